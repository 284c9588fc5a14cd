package tsdb

// arena hands out byte slices from large reusable blocks. A checkpoint
// encodes every key and value of a batch into one: badger keeps them only
// until the batch is flushed (it copies them into its memtable), and a
// million small encodings would otherwise land in the size classes of the
// head's own chunks, fragmenting the heap the head lives in.
type arena struct {
	blocks [][]byte
	cur    int // index of the block being filled
}

const arenaBlockSize = 1 << 20

// add appends one encoding, produced by enc appending to its argument,
// and returns it. The slice stays valid until reset.
func (a *arena) add(enc func([]byte) []byte) []byte {
	for {
		if a.cur == len(a.blocks) {
			a.blocks = append(a.blocks, make([]byte, 0, arenaBlockSize))
		}
		b := a.blocks[a.cur]
		room := b[len(b):cap(b)]
		out := enc(room[:0])
		if len(out) == 0 {
			return out
		}
		if len(room) > 0 && &out[0] == &room[0] { // enc stayed within the block
			a.blocks[a.cur] = b[:len(b)+len(out)]
			return out[:len(out):len(out)]
		}
		if len(b) == 0 {
			return out // larger than a block: it lives on the heap
		}
		a.cur++
	}
}

// reset makes every block reusable; slices handed out become invalid.
func (a *arena) reset() {
	for i := range a.blocks {
		a.blocks[i] = a.blocks[i][:0]
	}
	a.cur = 0
}
