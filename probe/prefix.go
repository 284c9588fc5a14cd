package probe

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// otherPrefix groups keys no prefix matches.
const otherPrefix = "other"

// prefixGrouper maps keys to the prefix they are counted under. With
// configured prefixes, the longest that matches; without, Kubernetes'
// /registry/<resource>/ grouping, and the first path segment ("/foo/")
// of keys outside /registry/.
type prefixGrouper struct {
	prefixes []string // longest first
}

func newPrefixGrouper(prefixes []string) prefixGrouper {
	ps := slices.Clone(prefixes)
	slices.SortFunc(ps, func(a, b string) int { return len(b) - len(a) })
	return prefixGrouper{prefixes: ps}
}

func (g prefixGrouper) group(key []byte) string {
	if len(g.prefixes) > 0 {
		for _, p := range g.prefixes {
			if bytes.HasPrefix(key, []byte(p)) {
				return p
			}
		}
		return otherPrefix
	}
	rest, ok := bytes.CutPrefix(key, []byte("/registry/"))
	if ok {
		if i := bytes.IndexByte(rest, '/'); i > 0 {
			return labelValue(key[:len("/registry/")+i+1])
		}
		return "/registry/"
	}
	if len(key) > 1 && key[0] == '/' {
		if i := bytes.IndexByte(key[1:], '/'); i > 0 {
			return labelValue(key[:i+2])
		}
	}
	return otherPrefix
}

// countIn adds n to counts[group], or to counts[otherPrefix] once counts
// holds limit groups and group is not one of them, so that a keyspace of
// random prefixes cannot grow the map past limit+1 entries. It returns
// the group counted.
func countIn[V int | int64](counts map[string]V, group string, n V, limit int) string {
	if _, ok := counts[group]; !ok && len(counts) >= limit {
		group = otherPrefix
	}
	counts[group] += n
	return group
}

// validatePrefixes refuses empty and duplicate prefixes.
func validatePrefixes(what string, prefixes []string) error {
	seen := map[string]bool{}
	for _, p := range prefixes {
		if p == "" {
			return fmt.Errorf("%s: empty prefix", what)
		}
		if seen[p] {
			return fmt.Errorf("%s: duplicate prefix %q", what, p)
		}
		seen[p] = true
	}
	return nil
}

// maxLabelValue bounds keys used as label values: etcd keys may be up to
// 1.5 MiB, label values are not meant to be.
const maxLabelValue = 256

// labelValue turns a key into a label value: valid UTF-8 (the write path
// refuses anything else) and at most maxLabelValue bytes.
func labelValue(key []byte) string {
	s := strings.ToValidUTF8(string(key), "\uFFFD")
	if len(s) <= maxLabelValue {
		return s
	}
	cut := maxLabelValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// largestFirst returns the n names of largest count, largest first, ties
// in name order so that reports are stable.
func largestFirst[V int | int64](counts map[string]V, n int) []string {
	names := slices.Sorted(maps.Keys(counts))
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(counts[b], counts[a]) })
	return names[:min(len(names), n)]
}
