package evaluator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestParseCacheSharesParsedQueries: a text parsed once is reused (the
// same tree and matchers), evaluation leaves the shared tree as it was,
// answers are the same from the cache and concurrently, and bad texts
// fail every time without being cached.
func TestParseCacheSharesParsedQueries(t *testing.T) {
	e := NewEngine(handledTotalHead(t), Options{})
	ctx, at := context.Background(), time.UnixMilli(19*15000)
	queries := append(append([]string(nil), diffQueries...),
		`sum by (cluster) (rate(grpc_server_handled_total{cluster=~"c[0-4]"}[1m]))`,
		`grpc_server_handled_total{instance=~"1.*"} @ end() offset 30s`,
		`predict_linear(grpc_server_handled_total{cluster="c1"}[2m], 60) > 0`)
	for _, q := range queries {
		first, err := e.parse(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		text := string(first.expr.AppendString(nil))
		want, wantErr := e.Range(ctx, q, at.Add(-2*time.Minute), at, 15*time.Second)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := e.Range(ctx, q, at.Add(-2*time.Minute), at, 15*time.Second)
				if (err == nil) != (wantErr == nil) || err == nil && fmt.Sprint(got.Value) != fmt.Sprint(want.Value) {
					t.Errorf("%s: a cached run answered %v, %v; the first %v, %v", q, got, err, want, wantErr)
				}
			}()
		}
		wg.Wait()
		again, _ := e.parse(q)
		if again != first {
			t.Errorf("%s: parsed again instead of reused", q)
		}
		if after := string(again.expr.AppendString(nil)); after != text {
			t.Errorf("evaluation changed the shared tree: %s became %s", text, after)
		}
	}
	for _, bad := range []string{`foo{a=~"("}`, `sum(`, strings.Repeat("(", 5000) + "1"} {
		for range 2 {
			if _, err := e.Instant(ctx, bad, at); !errors.Is(err, ErrBadQuery) {
				t.Errorf("%.40s: %v, want a bad query error", bad, err)
			}
		}
		if e.parsed.get(bad) != nil {
			t.Errorf("%.40s: cached", bad)
		}
	}
}

// TestParseCacheBounded: the cache drops entries once their cost (their
// texts at parseCacheCostPerByte) exceeds parseCacheMaxBytes and never
// holds a text over parseCacheMaxQuery.
func TestParseCacheBounded(t *testing.T) {
	var c parseCache
	long := strings.Repeat("x", parseCacheMaxQuery+1)
	c.put(long, &parsedQuery{})
	if c.get(long) != nil {
		t.Error("a text longer than parseCacheMaxQuery was cached")
	}
	pad := strings.Repeat("y", 1000)
	for i := range 3 * parseCacheMaxBytes / (1000 * parseCacheCostPerByte) {
		c.put(fmt.Sprint(i, pad), &parsedQuery{})
		if c.bytes > parseCacheMaxBytes {
			t.Fatalf("after %d texts the cache holds %d bytes", i+1, c.bytes)
		}
	}
	n := 0
	for k := range c.entries {
		n += len(k)
	}
	if n*parseCacheCostPerByte != c.bytes || len(c.entries) == 0 {
		t.Errorf("bytes %d, keys %d bytes in %d entries", c.bytes, n, len(c.entries))
	}
}
