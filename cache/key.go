package cache

import (
	"hash/maphash"

	"github.com/dotproxy/dotproxy/resolver"
)

// key is what makes two queries the same question for the cache: the
// name (compared without regard to ASCII case), type, class, and the two
// flags that change the answer: DO (DNSSEC records wanted) and CD (an
// answer that failed validation is acceptable). A stored key's name is
// in lower case; a query's is as the client wrote it.
type key struct {
	name          string
	qtype, qclass uint16
	do, cd        bool
}

// keyOf returns the key of req.
func keyOf(req *resolver.Request) key {
	return key{name: req.Name, qtype: req.Qtype, qclass: req.Qclass, do: req.DO, cd: req.CD}
}

// folded returns k with its name in lower case, the form the store
// keeps.
func (k key) folded() key {
	b := []byte(k.name)
	for i, c := range b {
		b[i] = lower(c)
	}
	k.name = string(b)
	return k
}

// matches reports whether the stored key s and the query's key k are the
// same question: a hash match alone could serve another name.
func (s *key) matches(k *key) bool {
	if s.qtype != k.qtype || s.qclass != k.qclass || s.do != k.do || s.cd != k.cd || len(s.name) != len(k.name) {
		return false
	}
	for i := 0; i < len(s.name); i++ {
		if s.name[i] != lower(k.name[i]) {
			return false
		}
	}
	return true
}

// foldBuf is the length of name hashed without a heap allocation: every
// name of 255 octets or fewer in presentation form (escapes make longer
// ones possible, and rare).
const foldBuf = 256

// hash returns k's hash under seed, folding the name's case on the way
// so that a hit allocates nothing.
func (k *key) hash(seed maphash.Seed) uint64 {
	var buf [foldBuf + 5]byte
	b := buf[:0]
	if len(k.name) > foldBuf {
		b = make([]byte, 0, len(k.name)+5)
	}
	for i := 0; i < len(k.name); i++ {
		b = append(b, lower(k.name[i]))
	}
	var flags byte
	if k.do {
		flags |= 1
	}
	if k.cd {
		flags |= 2
	}
	b = append(b, byte(k.qtype>>8), byte(k.qtype), byte(k.qclass>>8), byte(k.qclass), flags)
	return maphash.Bytes(seed, b)
}

// lower folds ASCII upper case only, as DNS names compare (RFC 4343).
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
