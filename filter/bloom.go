package filter

import "math/bits"

const (
	// bloomBitsPerName sizes the filter: about 1% false positives.
	bloomBitsPerName = 10
	bloomBlockBits   = 256
)

// bloom is a split block Bloom filter (as in Apache Parquet): each name
// sets one bit in each of the eight 32-bit words of one 256-bit block,
// so that a test reads one cache line.
type bloom [][8]uint32

// bloomSalts are Parquet's: odd constants that spread the bits.
var bloomSalts = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

// block picks h's block by its high bits; the low 32 pick the bits.
func (b bloom) block(h uint64) *[8]uint32 {
	i, _ := bits.Mul64(h*0x9e3779b97f4a7c15, uint64(len(b))) // remixed: the table's slot comes from h's high bits too
	return &b[i]
}

func (b bloom) add(h uint64) {
	blk := b.block(h)
	for i, salt := range bloomSalts {
		blk[i] |= 1 << (uint32(h) * salt >> 27)
	}
}

func (b bloom) has(h uint64) bool {
	if len(b) == 0 {
		return false
	}
	blk := b.block(h)
	for i, salt := range bloomSalts {
		if blk[i]&(1<<(uint32(h)*salt>>27)) == 0 {
			return false
		}
	}
	return true
}
