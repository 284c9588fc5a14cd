package tsdb

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

func TestSeriesSymsRoundTrip(t *testing.T) {
	for _, refs := range []string{"", "\x01\x02", strings.Repeat("\x7f", 127), strings.Repeat("\x81\x01", 64), strings.Repeat("a", 20000)} {
		ss := packSyms(refs)
		if got := ss.refs(); string(got) != refs {
			t.Fatalf("refs of %d bytes packed read back %d bytes", len(refs), len(got))
		}
		if b := packSyms([]byte(refs)); string(b.refs()) != refs {
			t.Fatalf("refs of %d bytes packed from a slice read back %d bytes", len(refs), len(b.refs()))
		}
		if (ss.p == nil) != (refs == "") {
			t.Fatalf("packSyms of %d bytes: pointer %p", len(refs), ss.p)
		}
	}
}

// TestSeriesSymsCopies checks that packSyms copies: the refs a series
// keeps do not change with the buffer they were encoded in.
func TestSeriesSymsCopies(t *testing.T) {
	buf := []byte{1, 2, 3}
	ss := packSyms(buf)
	buf[0] = 9
	if got := ss.refs(); got != "\x01\x02\x03" {
		t.Fatalf("refs %q after the source buffer changed", got)
	}
	if unsafe.Sizeof(ss) != unsafe.Sizeof(uintptr(0)) {
		t.Fatalf("seriesSyms is %d bytes, want one pointer", unsafe.Sizeof(ss))
	}
}

// internLabels is internSyms for tests that look at the references.
func (st *symbolTable) internLabels(lset labels.Labels) symRefs { return st.internSyms(lset).refs() }
