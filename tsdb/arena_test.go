package tsdb

import (
	"bytes"
	"testing"
)

func TestArena(t *testing.T) {
	var a arena
	put := func(n int, c byte) []byte {
		return a.add(func(b []byte) []byte { return append(b, bytes.Repeat([]byte{c}, n)...) })
	}
	x := put(10, 'x')
	y := put(arenaBlockSize-15, 'y') // leaves 5 bytes in the first block
	z := put(8, 'z')                 // does not fit: second block
	big := put(2*arenaBlockSize, 'b')
	if !bytes.Equal(x, bytes.Repeat([]byte{'x'}, 10)) || len(y) != arenaBlockSize-15 || !bytes.Equal(z, []byte("zzzzzzzz")) || len(big) != 2*arenaBlockSize {
		t.Fatal("contents")
	}
	if &z[0] == &a.blocks[0][:cap(a.blocks[0])][arenaBlockSize-5] {
		t.Fatal("z overflowed the first block")
	}
	if cap(x) != len(x) { // else appending to x would clobber y
		t.Fatal("an encoding's capacity reaches into the next one")
	}
	a.reset()
	w := put(3, 'w')
	if &w[0] != &a.blocks[0][0] {
		t.Fatal("reset did not reuse the first block")
	}
	if len(a.add(func(b []byte) []byte { return b })) != 0 {
		t.Fatal("empty encoding")
	}
}
