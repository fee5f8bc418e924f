package cache

// slotsGrowth is the fewest slots a shard's slices grow by: the first
// entries of an empty shard do not copy them at every step.
const slotsGrowth = 16

// alloc returns a free slot, growing the shard's slices when none is
// left. Caller holds mu.
func (sh *shard) alloc() int32 {
	if i := sh.free; i != 0 {
		sh.free = sh.slots[i].next
		return i
	}
	if len(sh.slots) == cap(sh.slots) {
		sh.grow()
	}
	sh.slots = append(sh.slots, slot{})
	sh.blobs = append(sh.blobs, nil)
	return int32(len(sh.slots) - 1)
}

// grow makes room for more slots: a quarter more, not the doubling of
// append, so that the slots a shard holds and does not use stay within
// what the byte bound counts for them (slotSlack), and never more than
// the shard's bound on entries needs (the sentinel, and one entry over
// the bound until resize evicts).
func (sh *shard) grow() {
	n := cap(sh.slots)
	n = max(n+max(n/slotSlack, slotsGrowth), len(sh.slots)+1)
	if limit := sh.maxEntries + 2; n > limit {
		n = max(limit, len(sh.slots)+1)
	}
	slots := make([]slot, len(sh.slots), n)
	copy(slots, sh.slots)
	sh.slots = slots
	blobs := make([][]byte, len(sh.blobs), n)
	copy(blobs, sh.blobs)
	sh.blobs = blobs
}

// touch makes slot i the most recently used. Caller holds mu.
func (sh *shard) touch(i int32) {
	if sh.slots[0].next == i {
		return
	}
	sh.unlink(i)
	sh.pushFront(i)
}

func (sh *shard) unlink(i int32) {
	s := &sh.slots[i]
	sh.slots[s.prev].next = s.next
	sh.slots[s.next].prev = s.prev
	s.prev, s.next = 0, 0
}

func (sh *shard) pushFront(i int32) {
	head := &sh.slots[0]
	first := head.next
	sh.slots[i].prev, sh.slots[i].next = 0, first
	sh.slots[first].prev = i
	head.next = i
}

// storedOf returns the answer slot i holds, which it must hold: its
// blob or its rare answer, which are never changed, so that the caller
// may read them after releasing mu. Caller holds mu.
func (sh *shard) storedOf(i int32) stored {
	if sh.slots[i].flags&slotRare != 0 {
		return stored{rare: sh.rare[i].data}
	}
	return stored{blob: sh.blobs[i]}
}

// setAnswer gives slot i the answer a, stored at now (on the cache's
// monotonic scale), with a hit count of 0 and no failure. Caller holds
// mu, and calls resize.
func (sh *shard) setAnswer(i int32, a stored, now int64) {
	s := &sh.slots[i]
	s.stored, s.expires, s.hits = now, now+int64(a.ttl())*1e9, 0
	s.flags &^= slotAnswer | slotFail
	if a.rare != nil {
		s.flags |= slotRare
		sh.rare[i] = &rare{data: a.rare}
		return
	}
	s.flags |= slotPacked
	sh.blobs[i] = a.blob
	delete(sh.rare, i)
}

// dropAnswer forgets slot i's answer, keeping any failure. The blob
// stays (what it takes is still counted): it holds the name. Caller
// holds mu, and calls resize.
func (sh *shard) dropAnswer(i int32) {
	s := &sh.slots[i]
	if s.flags&slotRare != 0 {
		if r := sh.rare[i]; r.fail != nil {
			r.data = nil
		} else {
			delete(sh.rare, i)
		}
	}
	s.flags &^= slotAnswer
}

// failure returns the failure slot i remembers, or nil. Caller holds mu.
func (sh *shard) failure(i int32) *failed {
	if sh.slots[i].flags&slotFail == 0 {
		return nil
	}
	return sh.rare[i].fail
}

// setFailure makes slot i remember f (nil: forget its failure). Caller
// holds mu, and calls resize.
func (sh *shard) setFailure(i int32, f *failed) {
	s := &sh.slots[i]
	r := sh.rare[i]
	switch {
	case f != nil && r == nil:
		sh.rare[i] = &rare{fail: f}
	case f != nil:
		r.fail = f
	case r != nil && r.data == nil:
		delete(sh.rare, i)
	case r != nil:
		r.fail = nil
	}
	if f != nil {
		s.flags |= slotFail
	} else {
		s.flags &^= slotFail
	}
}

// resize records slot i's new size and evicts from the least recently
// used end until the shard is within its bounds again; slot i itself,
// the most recent, is evicted only when it alone exceeds the byte bound.
// Caller holds mu.
func (sh *shard) resize(i int32) {
	s := &sh.slots[i]
	size := entryBytes(sh.blobs[i])
	if s.flags&(slotRare|slotFail) != 0 {
		size += rareCost
		if s.flags&slotRare != 0 {
			size += sh.rare[i].data.heap
		}
		if f := sh.failure(i); f != nil {
			size += failedCost
			if f.answer != nil {
				size += f.answer.heap
			} else {
				size += errCost
			}
		}
	}
	sh.bytes += size - int(s.size)
	s.size = int32(size)
	for len(sh.index) > sh.maxEntries || sh.bytes > sh.maxBytes {
		last := sh.slots[0].prev
		if last == 0 {
			return
		}
		sh.remove(last)
		sh.evicts++
	}
}
