package tsdb

import (
	"bytes"
	"testing"
)

func TestOpenChunk(t *testing.T) {
	var c openChunk
	if c.open() || c.bytes() != nil {
		t.Fatalf("zero openChunk: open %v, bytes %x", c.open(), c.bytes())
	}
	b := make([]byte, 3, 48)
	copy(b, "abc")
	c.set(b)
	got := c.bytes()
	if !c.open() || !bytes.Equal(got, []byte("abc")) || cap(got) != 48 {
		t.Fatalf("set(%q, cap 48): open %v, bytes %q, cap %d", b, c.open(), got, cap(got))
	}
	got = append(got, 'd') // within capacity: the same array, as a slice would be
	if b[:4][3] != 'd' {
		t.Fatal("bytes() does not share the array it was set from")
	}
	c.set(got)
	if !bytes.Equal(c.bytes(), []byte("abcd")) {
		t.Fatalf("after an append: %q", c.bytes())
	}
	c.set(nil)
	if c.open() || c.bytes() != nil {
		t.Fatalf("set(nil): open %v, bytes %x", c.open(), c.bytes())
	}
	c.set(make([]byte, 0))
	if !c.open() || len(c.bytes()) != 0 {
		t.Fatalf("set(empty): open %v, bytes %x", c.open(), c.bytes())
	}
}
