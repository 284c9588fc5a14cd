package tsdb

import (
	"encoding/binary"
	"slices"
	"sort"
	"unsafe"
)

// postingList holds the sorted refs of the series carrying one label pair,
// packed: refs are allocated in increasing order, so a list is almost
// always appended to and its refs are close to each other. Each is stored
// as the uvarint of its distance to the one before, one or two bytes where
// a []SeriesRef spends eight, and a skip entry every postingSkipEvery refs (a quarter of a byte a ref)
// lets an intersection jump over the refs it does not need.
//
// A ref below the largest packed one (a series created concurrently with
// a newer one, or an evicted series brought back under its old ref) waits
// in late until late grows past a share of the list; then the list is
// packed anew. The refs of packed and late are disjoint; the list is their
// union.
//
// A list is not safe for concurrent use: postings guards every list with
// its lock.
type postingList struct {
	packed []byte        // uvarint distances, the first from 0
	skips  []postingSkip // skips[k] is the ref at index (k+1)*postingSkipEvery
	last   SeriesRef     // the largest packed ref
	n      int           // refs in packed
	late   []SeriesRef   // sorted, not in packed
}

// postingSkip locates one packed ref: its value and the offset just past
// its uvarint.
type postingSkip struct {
	ref SeriesRef
	off int
}

const (
	postingSkipEvery = 64
	// postingLateMin is the number of late refs a list always tolerates;
	// past it, late may hold a sixteenth of the list before a repack, so
	// the repacks of a list cost O(1) amortised per late ref.
	postingLateMin  = 64
	postingListSize = int64(unsafe.Sizeof(postingList{}))
)

// newPostingList packs refs, which must be sorted and without duplicates.
func newPostingList(refs []SeriesRef) postingList {
	var l postingList
	size := 0
	prev := SeriesRef(0)
	for _, r := range refs {
		size += uvarintLen(uint64(r - prev))
		prev = r
	}
	l.packed = make([]byte, 0, size)
	if n := len(refs) / postingSkipEvery; n > 0 {
		l.skips = make([]postingSkip, 0, n)
	}
	for _, r := range refs {
		l.appendPacked(r)
	}
	return l
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// len returns the number of refs in the list.
func (l *postingList) len() int { return l.n + len(l.late) }

// bytes returns the memory the list holds, its struct included.
func (l *postingList) bytes() int64 {
	return postingListSize + int64(cap(l.packed)) + int64(cap(l.skips))*int64(unsafe.Sizeof(postingSkip{})) + int64(cap(l.late))*8
}

// clip drops the slack that appends left, when it is more than an
// eighth: a list built once (at recovery) is not appended to much.
func (l *postingList) clip() {
	if cap(l.packed)-len(l.packed) > len(l.packed)/8 {
		l.packed = slices.Clone(l.packed)
	}
	if cap(l.skips)-len(l.skips) > len(l.skips)/8 {
		l.skips = slices.Clone(l.skips)
	}
}

// add puts ref in the list; a ref already there stays once.
func (l *postingList) add(ref SeriesRef) {
	if l.n == 0 || ref > l.last {
		l.appendPacked(ref)
		return
	}
	i, found := slices.BinarySearch(l.late, ref)
	if found || l.packedHas(ref) {
		return
	}
	l.late = slices.Insert(l.late, i, ref)
	if len(l.late) > max(postingLateMin, l.n/16) {
		l.repack(nil)
	}
}

func (l *postingList) appendPacked(ref SeriesRef) {
	l.packed = binary.AppendUvarint(l.packed, uint64(ref-l.last))
	if l.n > 0 && l.n%postingSkipEvery == 0 {
		l.skips = append(l.skips, postingSkip{ref: ref, off: len(l.packed)})
	}
	l.last = ref
	l.n++
}

// repack packs the list anew without the refs of drop (sorted), merging
// late in and leaving no slack. It streams: a list of millions of refs
// is never decoded whole.
func (l *postingList) repack(drop []SeriesRef) {
	var out postingList
	out.packed = make([]byte, 0, len(l.packed)+len(l.late)*binary.MaxVarintLen64)
	c := packedCursor{l: l, idx: -1}
	more := c.next()
	late := l.late
	for more || len(late) > 0 {
		var ref SeriesRef
		switch {
		case !more || len(late) > 0 && late[0] < c.cur:
			ref, late = late[0], late[1:]
		default:
			ref = c.cur
			more = c.next()
		}
		for len(drop) > 0 && drop[0] < ref {
			drop = drop[1:]
		}
		if len(drop) > 0 && drop[0] == ref || out.n > 0 && ref == out.last {
			continue
		}
		out.appendPacked(ref)
	}
	out.clip()
	*l = out
}

// appendTo appends the list's refs to dst in order.
func (l *postingList) appendTo(dst []SeriesRef) []SeriesRef {
	start := len(dst)
	dst = slices.Grow(dst, l.len())
	out := dst[start : start+l.n]
	ref, off, packed := SeriesRef(0), 0, l.packed
	for i := range out {
		d, w := nextDistance(packed, off)
		ref += d
		off += w
		out[i] = ref
	}
	dst = dst[:start+l.n]
	if len(l.late) == 0 {
		return dst
	}
	dst = append(dst, l.late...)
	slices.Sort(dst[start:])
	return slices.Compact(dst)
}

// intersect keeps in refs (sorted; filtered in place) those in the list.
// It walks refs and seeks forward in the list, so that a short refs costs
// a few skips and blocks of a long list, not all of it.
func (l *postingList) intersect(refs []SeriesRef) []SeriesRef {
	out := refs[:0]
	c := packedCursor{l: l, idx: -1}
	late := l.late
	for _, ref := range refs {
		i, found := slices.BinarySearch(late, ref)
		late = late[i:]
		if found || c.seek(ref) && c.cur == ref {
			out = append(out, ref)
		}
	}
	return out
}

// nextDistance decodes the uvarint at packed[off:] and its width. Most
// distances fit one or two bytes, decoded inline; packed was written by
// appendPacked, so a continuation byte is always followed by another.
func nextDistance(packed []byte, off int) (SeriesRef, int) {
	b0 := packed[off]
	if b0 < 0x80 {
		return SeriesRef(b0), 1
	}
	if b1 := packed[off+1]; b1 < 0x80 {
		return SeriesRef(b0&0x7f) | SeriesRef(b1)<<7, 2
	}
	d, w := binary.Uvarint(packed[off:])
	return SeriesRef(d), w
}

// packedHas reports whether ref is among the packed refs. Only late refs
// ask, which are few: it costs a search of the skips and at most
// postingSkipEvery decodes.
func (l *postingList) packedHas(ref SeriesRef) bool {
	c := packedCursor{l: l, idx: -1}
	return c.seek(ref) && c.cur == ref
}

// packedCursor walks a list's packed refs forward.
type packedCursor struct {
	l   *postingList
	idx int       // index of cur; -1 before the first
	off int       // offset just past cur's uvarint
	cur SeriesRef // the ref at idx
}

func (c *packedCursor) next() bool {
	if c.idx+1 >= c.l.n {
		return false
	}
	d, w := nextDistance(c.l.packed, c.off)
	c.cur += d
	c.off += w
	c.idx++
	return true
}

// seek moves to the first ref at or after target and reports whether
// there is one. It never moves backwards.
func (c *packedCursor) seek(target SeriesRef) bool {
	if c.idx >= 0 && c.cur >= target {
		return true
	}
	// Jump to the last skip at or before target that lies ahead.
	from := max(c.idx, 0) / postingSkipEvery // skips[from] lies past idx
	skips := c.l.skips[from:]
	if k := sort.Search(len(skips), func(i int) bool { return skips[i].ref > target }) - 1; k >= 0 {
		idx := (from + k + 1) * postingSkipEvery
		if idx > c.idx {
			c.idx, c.off, c.cur = idx, skips[k].off, skips[k].ref
			if c.cur >= target {
				return true
			}
		}
	}
	for c.next() {
		if c.cur >= target {
			return true
		}
	}
	return false
}
