package cache

import (
	"unsafe"
)

// What the parts of an entry take on the heap, for the byte bound
// (Options.MaxBytes). Each is the size class the Go allocator rounds the
// part up to, not its bare size, so that the bound counts what the
// entries hold in memory; BenchmarkMemoryShapes compares the count with
// the live heap for each kind of answer.
var (
	// slotCost is an entry's slot and its blob's slice header, with the
	// room a shard's slices hold beyond their length (see grow).
	slotCost   = int(unsafe.Sizeof(slot{})+unsafe.Sizeof([]byte(nil))) * (slotSlack + 1) / slotSlack
	answerCost = allocSize(int(unsafe.Sizeof(answer{})))
	failedCost = allocSize(int(unsafe.Sizeof(failed{})))
	// rareCost is what an entry with a rare answer or a failure takes
	// beyond its slot: the side table's record and its map slot.
	rareCost = allocSize(int(unsafe.Sizeof(rare{}))) + rareSlotCost
)

const (
	// slotSlack: a shard's slices grow by a quarter (grow), so they hold
	// at most a quarter more slots than entries.
	slotSlack = 4
	// mapSlotCost is an entry's share of its shard's index: a slot of
	// an 8-octet key and a 4-octet value, aligned to 16, plus a control
	// octet, with room for twice the entries, since a map that has just
	// grown is not half full.
	mapSlotCost = 2 * (16 + 1)
	// rareSlotCost is the same for the side table of rare entries: a
	// 4-octet key and a pointer.
	rareSlotCost = 2 * (16 + 1)
	// rrOverhead is what one record of an answer kept as dns.RRs takes
	// beyond dns.Len: the record's struct, its interface slot, the
	// rounding of its fields' allocations.
	rrOverhead = 64
	// errCost is a remembered resolver error, a chain of a few wrapped
	// errors and their texts.
	errCost = 256
)

// entryBytes is what an entry whose blob is blob takes, before anything
// rare: its slot, its blob, its index slot.
func entryBytes(blob []byte) int { return slotCost + allocSize(cap(blob)) + mapSlotCost }

// sizeClasses are the Go allocator's size classes up to 32 KiB
// (runtime/sizeclasses.go); larger objects take whole 8 KiB pages.
var sizeClasses = [...]int{
	8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
	288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280,
	1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528,
	6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072,
	20480, 21760, 24576, 27264, 28672, 32768,
}

// allocSize is the memory an allocation of n octets takes: its size
// class, 0 for none.
func allocSize(n int) int {
	if n <= 0 {
		return 0
	}
	if n > sizeClasses[len(sizeClasses)-1] {
		const page = 8 << 10
		return (n + page - 1) / page * page
	}
	lo, hi := 0, len(sizeClasses)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if sizeClasses[mid] < n {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return sizeClasses[lo]
}
