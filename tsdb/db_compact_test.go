package tsdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
)

// compactTestOptions: 1-minute buckets of chunks of 4 samples, so that a
// few minutes of samples every second make many chunks per bucket; a
// bucket is complete 30 s after its end (staleness 20 s, out-of-order
// window 10 s).
func compactTestOptions() Options {
	o := testDBOptions()
	o.Head.ChunkRange = time.Minute
	o.Head.ChunkSamples = 4
	o.Head.OutOfOrderWindow = 10 * time.Second
	o.StalenessPeriod = 20 * time.Second
	o.Retention = time.Hour
	o.ChunkCacheBytes = 1 << 20
	return o
}

var compactA, compactB, compactC = labels.FromStrings("__name__", "a"), labels.FromStrings("__name__", "b"), labels.FromStrings("__name__", "c")

// appendAt appends the sample (ms, v) to lset; a refused sample
// (out of the window, duplicates) are skipped, as a sender's would be.
func appendAt(t *testing.T, db *DB, lset labels.Labels, ms int64, v float64) {
	t.Helper()
	app := db.Appender()
	err := app.Append(lset, ms, v)
	if err != nil && !errors.Is(err, ErrTooOldSample) && !errors.Is(err, ErrDuplicateSampleForTimestamp) && !errors.Is(err, ErrOutOfOrderSample) {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// chunksPer counts the store's chunk entries per (bucket, series).
func chunksPer(t *testing.T, db *DB) map[cacheKey]int {
	t.Helper()
	out := badgerChunksPer(t, db)
	var err error
	// The journal's live records: those of buckets not compacted (nor
	// dropped) into badger.
	dead := db.journalDeadThrough()
	var buf []byte
	err = db.head.series.refs.from(0, func(s *memSeries) (bool, error) {
		for pos := db.head.series.refs.chain(s.ref); pos != 0; {
			rec, b, err := db.journal.read(pos, buf)
			if buf = b; err != nil {
				return false, err
			}
			if bucket := db.store.bucketOf(rec.chunk.minT); bucket > dead {
				out[cacheKey{bucket: bucket, ref: s.ref}]++
			}
			if rec.prevMaxT < db.journalLiveFrom() {
				break // the rest is dead, and its segments may be gone
			}
			pos = rec.prev
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// badgerChunksPer counts badger's chunk entries per bucket and series.
func badgerChunksPer(t *testing.T, db *DB) map[cacheKey]int {
	t.Helper()
	out := map[cacheKey]int{}
	err := db.store.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixChunk}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			out[cacheKey{bucket: unflipSign(binary.BigEndian.Uint64(k[1:9])), ref: SeriesRef(binary.BigEndian.Uint64(k[9:17]))}]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// chainToBadger writes the journal's chunks of series ref to badger under
// their keys and empties its chain, as a store written before the
// journal holds its chunks.
func chainToBadger(t *testing.T, db *DB, ref SeriesRef) {
	t.Helper()
	var buf []byte
	err := db.store.db.Update(func(txn *badger.Txn) error {
		for pos := db.head.series.refs.chain(ref); pos != 0; {
			rec, b, err := db.journal.read(pos, buf)
			if buf = b; err != nil {
				return err
			}
			if err := txn.Set(db.store.appendChunkKey(nil, ref, rec.chunk.minT, rec.kind, rec.seq), appendChunkValue(nil, rec.chunk)); err != nil {
				return err
			}
			pos = rec.prev
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.head.series.refs.setChain(ref, 0)
}

// journalChunks returns the chunks of every chain in the journal.
func journalChunks(t *testing.T, db *DB) []memChunk {
	t.Helper()
	var out []memChunk
	var buf []byte
	err := db.head.series.refs.from(0, func(s *memSeries) (bool, error) {
		for pos := db.head.series.refs.chain(s.ref); pos != 0; {
			rec, b, err := db.journal.read(pos, buf)
			if buf = b; err != nil {
				return false, err
			}
			out = append(out, rec.chunk)
			pos = rec.prev
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// refOf returns the ref of the series lset, in the head or evicted.
func refOf(t *testing.T, db *DB, lset labels.Labels) SeriesRef {
	t.Helper()
	q, err := db.Querier(minInt64, maxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), labels.MustNewMatcher(labels.MatchEqual, "__name__", lset.Get("__name__")))
	for set.Next() {
		if hs := set.At().(*headSeries); hs.s != nil {
			return hs.s.ref
		} else {
			return hs.evicted.ref
		}
	}
	t.Fatalf("no series %s", lset)
	return 0
}

// compactedEncodings counts the integer and XOR chunks in buckets up to
// last.
func compactedEncodings(t *testing.T, db *DB, last int64) (ints, xors int) {
	t.Helper()
	err := db.store.scan(prefixChunk, func(key, val []byte) error {
		c, err := decodeChunk(key, val)
		if err != nil || unflipSign(binary.BigEndian.Uint64(key[1:9])) > last {
			return err
		}
		if isIntChunk(c.data) {
			ints++
		} else {
			xors++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ints, xors
}

func compactAll(t *testing.T, db *DB) compactStats {
	t.Helper()
	st, err := db.compact(nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sameSelect(t *testing.T, what string, got, want map[string][]sample) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Fatalf("%s: series %s differs:\n got %v\nwant %v", what, k, got[k], want[k])
			}
		}
		t.Fatalf("%s: got series %d, want %d", what, len(got), len(want))
	}
}

// TestCompactKeepsEverySample: compaction leaves every query answer as it
// was, merges what it can, and a restart reads the same.
func TestCompactKeepsEverySample(t *testing.T) {
	const sec = 1000
	cases := []struct {
		name  string
		setup func(t *testing.T, db *DB)
		// then runs after the first compaction; another compaction
		// follows it, checked the same way.
		then func(t *testing.T, db *DB)
		// extra returns how many chunks a (bucket, series) may keep
		// besides one after compaction.
		extra func(t *testing.T, db *DB, round int, k cacheKey) int
		// xor: some compacted chunks hold floats (all cases hold
		// integer series, which compaction writes as integer chunks).
		xor bool
	}{{
		name: "in-order chunks only",
		setup: func(t *testing.T, db *DB) {
			for i := int64(0); i < 300; i++ {
				appendAt(t, db, compactA, i*sec, float64(i))
				appendAt(t, db, compactB, i*sec, float64(i%7))
				appendAt(t, db, compactC, i*sec, float64(i)*0.37)
			}
			checkpoint(t, db)
		},
		xor: true,
	}, {
		name: "out-of-order chunks, and duplicates of persisted samples",
		setup: func(t *testing.T, db *DB) {
			for i := int64(0); i < 300; i++ {
				appendAt(t, db, compactA, i*sec, float64(i))
				if i%3 == 2 {
					appendAt(t, db, compactA, i*sec-5500, -float64(i))
				}
				if i%20 == 19 {
					checkpoint(t, db)
					// Persisted and released: accepted again with another
					// value, and written as an out-of-order chunk.
					appendAt(t, db, compactA, (i-8)*sec, 1e6+float64(i))
				}
			}
			checkpoint(t, db)
		},
	}, {
		name: "chunks written after the bucket was compacted",
		setup: func(t *testing.T, db *DB) {
			for i := int64(0); i < 300; i++ {
				appendAt(t, db, compactA, i*sec, float64(i))
				if i <= 50 {
					appendAt(t, db, compactB, i*sec, float64(i))
				}
				if i%20 == 19 {
					checkpoint(t, db)
				}
			}
			checkpoint(t, db)
		},
		then: func(t *testing.T, db *DB) {
			// b, silent since 50 s and evicted, takes a sample within its
			// out-of-order window: a late chunk in compacted bucket 0.
			appendAt(t, db, compactB, 45500, 42)
			checkpoint(t, db)
			got := dbSelect(t, db, 45500, 45500, matchAll)[compactB.String()]
			if len(got) != 1 || got[0].v != 42 {
				t.Fatalf("late sample: %v", got)
			}
		},
		extra: func(t *testing.T, db *DB, round int, k cacheKey) int {
			if round == 1 && k.bucket == 0 && k.ref == refOf(t, db, compactB) {
				return 1 // the late chunk, until the bucket is compacted again (never)
			}
			return 0
		},
	}, {
		name: "series evicted mid-bucket",
		setup: func(t *testing.T, db *DB) {
			for i := int64(0); i < 300; i++ {
				appendAt(t, db, compactA, i*sec, float64(i))
				if i <= 90 {
					appendAt(t, db, compactB, i*sec, float64(i))
				}
				if i%20 == 19 {
					checkpoint(t, db)
				}
			}
			checkpoint(t, db)
		},
	}, {
		name: "one-chunk and empty buckets",
		setup: func(t *testing.T, db *DB) {
			for i := int64(0); i < 300; i++ {
				appendAt(t, db, compactA, i*sec, float64(i))
				if i == 10 || i == 11 || i == 200 {
					appendAt(t, db, compactC, i*sec, float64(i))
				}
			}
			checkpoint(t, db)
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := openTestDB(t, dir, compactTestOptions())
			defer func() { db.Close() }()
			tc.setup(t, db)
			rounds := []func(*testing.T, *DB){nil}
			if tc.then != nil {
				rounds = append(rounds, tc.then)
			}
			for round, then := range rounds {
				if then != nil {
					then(t, db)
				}
				before := dbSelect(t, db, minInt64, maxInt64, matchAll)
				chunksBefore := chunksPer(t, db)
				st := compactAll(t, db)
				sameSelect(t, "after compaction", dbSelect(t, db, minInt64, maxInt64, matchAll), before)
				last, _ := db.compactBefore()
				for k, n := range chunksPer(t, db) {
					want := 1
					if tc.extra != nil {
						want += tc.extra(t, db, round, k)
					}
					if k.bucket <= last && n != min(want, chunksBefore[k]) {
						t.Errorf("round %d: bucket %d series %d: %d chunks after compaction, want %d (had %d)", round, k.bucket, k.ref, n, want, chunksBefore[k])
					}
				}
				if round == 0 && (st.buckets == 0 || st.merged == 0) {
					t.Fatalf("compaction did nothing: %+v", st)
				}
				if ints, xors := compactedEncodings(t, db, last); round == 0 && (ints == 0 || (tc.xor && xors == 0)) {
					t.Fatalf("compacted buckets hold %d integer and %d XOR chunks", ints, xors)
				}
				if round > 0 && st.buckets+st.series != 0 {
					t.Fatalf("a compacted bucket was compacted again: %+v", st)
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				db = openTestDB(t, dir, compactTestOptions())
				sameSelect(t, "after a restart", dbSelect(t, db, minInt64, maxInt64, matchAll), before)
			}
		})
	}
}

// TestCompactEligibleBuckets: a bucket is compacted only once a
// completed checkpoint ran past its end by the staleness period plus the
// out-of-order window.
func TestCompactEligibleBuckets(t *testing.T) {
	db := openTestDB(t, t.TempDir(), compactTestOptions())
	defer db.Close()
	for i := int64(0); i < 89; i++ { // to 88 s: staleBefore 68 s, bucket 0 needs 70 s
		appendAt(t, db, compactA, i*1000, float64(i))
	}
	if st := compactAll(t, db); st.buckets != 0 {
		t.Fatalf("compacted before any checkpoint: %+v", st)
	}
	checkpoint(t, db)
	if st := compactAll(t, db); st.buckets != 0 {
		t.Fatalf("bucket 0 compacted 18 s after its end: %+v", st)
	}
	appendAt(t, db, compactA, 90*1000, 90) // staleBefore 70 s
	if st := compactAll(t, db); st.buckets != 0 {
		t.Fatalf("compacted before the checkpoint that completes the bucket: %+v", st)
	}
	checkpoint(t, db)
	if st := compactAll(t, db); st.buckets != 1 || st.series != 1 {
		t.Fatalf("bucket 0 not compacted once complete: %+v", st)
	}
	if st := compactAll(t, db); st.buckets != 0 || st.series != 0 {
		t.Fatalf("compacted twice: %+v", st)
	}
}

// TestCheckpointSplitsChunksAtBuckets: a series' chunks span the store's
// bucket boundaries (its phase shifts its ranges off them); the
// checkpoint writes each piece into its own bucket, and every sample
// reads back once.
func TestCheckpointSplitsChunksAtBuckets(t *testing.T) {
	o := compactTestOptions()
	o.Head.ChunkSamples = 120 // chunks cut at the range's end only
	db := openTestDB(t, t.TempDir(), o)
	defer db.Close()
	for i := int64(0); i < 300; i++ {
		appendAt(t, db, compactA, i*1000, float64(i*1000))
	}
	checkpoint(t, db)
	entries := 0
	for _, c := range journalChunks(t, db) {
		if db.store.bucketOf(c.minT) != db.store.bucketOf(c.maxT) {
			t.Errorf("chunk [%d, %d] spans buckets", c.minT, c.maxT)
		}
		entries++
	}
	if entries < 5 { // four ranges end in 300 s; each closed chunk spans a boundary
		t.Fatalf("%d chunk entries, want the closed chunks split in two", entries)
	}
	got := dbSelect(t, db, 0, 300_000, labels.MustNewMatcher(labels.MatchEqual, "__name__", "a"))
	checkSeries(t, got[compactA.String()], 0, 1000, 300)
}

// TestCompactWaitsForOpenChunk: a bucket whose end an open chunk spans
// is not compacted until a checkpoint wrote that chunk, though the
// staleness period and the out-of-order window have passed; then its
// chunks merge into one.
func TestCompactWaitsForOpenChunk(t *testing.T) {
	o := compactTestOptions()
	o.Head.ChunkRange = 10 * time.Minute
	o.Head.ChunkSamples = 240 // chunks cut at the range's end only
	db := openTestDB(t, t.TempDir(), o)
	defer db.Close()
	appendAt(t, db, compactA, 0, 0)
	r := o.Head.ChunkRange.Milliseconds()
	// The series' second range starts at phase+r and spans the end of
	// bucket 1 (2r) by more than the staleness period and the window
	// (30 s), which the test needs.
	phase := chunkPhase(refOf(t, db, compactA), r)
	if phase <= 30_000 {
		t.Fatalf("phase %d ms: the test needs more than 30 s", phase)
	}
	step := int64(5000)
	ts := step
	appendUntil := func(end int64) {
		for ; ts <= end; ts += step {
			appendAt(t, db, compactA, ts, float64(ts))
		}
	}
	appendUntil(2*r + 30_000) // staleness and window past bucket 1's end
	checkpoint(t, db)
	if st := compactAll(t, db); st.buckets != 1 {
		t.Fatalf("%d buckets compacted, want bucket 0 alone while an open chunk spans bucket 1's end", st.buckets)
	}
	appendUntil(phase + 2*r + 60_000) // past the open chunk's range
	checkpoint(t, db)
	if st := compactAll(t, db); st.buckets != 1 {
		t.Fatalf("%d buckets compacted, want bucket 1", st.buckets)
	}
	if n := chunksPer(t, db)[cacheKey{bucket: 1, ref: refOf(t, db, compactA)}]; n != 1 {
		t.Fatalf("%d chunk entries in bucket 1, want its chunks merged into one", n)
	}
	got := dbSelect(t, db, 0, ts, labels.MustNewMatcher(labels.MatchEqual, "__name__", "a"))
	checkSeries(t, got[compactA.String()], 0, step, int(ts/step))
}

// TestCompactCrashBetweenBatches: a crash between batches (badger closed,
// no checkpoint) leaves every sample readable exactly once, and the next
// start finishes the bucket.
func TestCompactCrashBetweenBatches(t *testing.T) {
	dir := t.TempDir()
	o := compactTestOptions()
	o.compactBatchSeries = 3
	db := openTestDB(t, dir, o)
	var lsets []labels.Labels
	for s := range 10 {
		lsets = append(lsets, labels.FromStrings("__name__", "m", "i", fmt.Sprint(s)))
	}
	for i := int64(0); i < 200; i++ { // buckets 0 and 1 complete
		for s, ls := range lsets {
			appendAt(t, db, ls, i*1000, float64(i*int64(s)))
		}
	}
	checkpoint(t, db)
	want := dbSelect(t, db, minInt64, maxInt64, matchAll)
	batches := 0
	st, err := db.compact(func() bool { batches++; return batches > 2 })
	if err != nil {
		t.Fatal(err)
	}
	if st.series != 6 || st.buckets != 0 {
		t.Fatalf("two batches of 3 series: %+v", st)
	}
	crash(t, db)

	db = openTestDB(t, dir, o)
	sameSelect(t, "after a crash mid-bucket", dbSelect(t, db, minInt64, maxInt64, matchAll), want)
	// Merged series have their chunk in badger; the others only their
	// journal records, live until the bucket is marked compacted.
	inBadger := badgerChunksPer(t, db)
	merged, whole := 0, 0
	for k := range chunksPer(t, db) {
		if k.bucket == 0 {
			if inBadger[k] == 1 {
				merged++
			} else {
				whole++
			}
		}
	}
	if merged != 6 || whole != 4 {
		t.Fatalf("bucket 0 after the crash: %d series merged, %d not; want 6 and 4", merged, whole)
	}
	checkpoint(t, db) // a restart compacts after its first checkpoint
	// Bucket 0's merged series are merged again: their journal records
	// stay live until the bucket is marked, and the merge is idempotent.
	if st := compactAll(t, db); st.series != 10+10 || st.buckets != 2 {
		t.Fatalf("after the restart: %+v, want bucket 0's 10 series and bucket 1's 10", st)
	}
	sameSelect(t, "after compaction finished", dbSelect(t, db, minInt64, maxInt64, matchAll), want)
	crash(t, db)
	db = openTestDB(t, dir, o)
	defer db.Close()
	sameSelect(t, "after another crash", dbSelect(t, db, minInt64, maxInt64, matchAll), want)
}

// TestCompactLeavesMalformedChunks: a chunk that does not decode is
// reported, its series' chunks in that bucket stay as they are, and every
// other series and bucket is compacted.
func TestCompactLeavesMalformedChunks(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(key, val []byte) []byte
	}{
		{"truncated XOR", func(_, val []byte) []byte { return val[:len(val)-3] }},
		{"no max time", func(_, _ []byte) []byte { return []byte{} }},
		{"max time past the samples", func(key, val []byte) []byte {
			c, _ := decodeChunk(key, val)
			return appendChunkValue(nil, memChunk{data: c.data, maxT: c.maxT + 1})
		}},
		{"sample count past the data", func(_, val []byte) []byte {
			v := bytes.Clone(val)
			_, n := binary.Varint(v)
			binary.BigEndian.PutUint16(v[n:], binary.BigEndian.Uint16(v[n:])+1)
			return v
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := openTestDB(t, t.TempDir(), compactTestOptions())
			defer db.Close()
			for i := int64(0); i < 200; i++ { // buckets 0 and 1 complete
				for _, ls := range []labels.Labels{compactA, compactB, compactC} {
					appendAt(t, db, ls, i*1000, float64(i)+0.5) // fractions: XOR chunks, whose header the corruption targets
				}
			}
			checkpoint(t, db)
			bad := refOf(t, db, compactB)
			chainToBadger(t, db, bad) // as a store from before the journal holds it
			prefix := chunkPrefix(nil, 1, bad)
			var corrupted []byte
			err := db.store.db.Update(func(txn *badger.Txn) error {
				it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
				it.Seek(prefix)
				key := it.Item().KeyCopy(nil)
				val, err := it.Item().ValueCopy(nil)
				it.Close()
				if err != nil {
					return err
				}
				corrupted = key
				return txn.Set(key, tc.corrupt(key, val))
			})
			if err != nil {
				t.Fatal(err)
			}
			rawBucket := func() map[string]string {
				out := map[string]string{}
				db.store.db.View(func(txn *badger.Txn) error {
					it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
					defer it.Close()
					for it.Rewind(); it.Valid(); it.Next() {
						v, _ := it.Item().ValueCopy(nil)
						out[string(it.Item().KeyCopy(nil))] = string(v)
					}
					return nil
				})
				return out
			}
			others := labels.MustNewMatcher(labels.MatchNotEqual, "__name__", "b")
			want := dbSelect(t, db, minInt64, maxInt64, others)
			wantB0 := dbSelect(t, db, 0, 59_999, matchAll)[compactB.String()]
			rawBefore := rawBucket()
			st := compactAll(t, db)
			if st.malformed != 1 || testutil.ToFloat64(db.metrics.compactionMalformed) != 1 {
				t.Fatalf("malformed chunk %x not reported: %+v", corrupted, st)
			}
			if !reflect.DeepEqual(rawBucket(), rawBefore) {
				t.Fatal("the malformed series' chunks in its bucket changed")
			}
			for k, n := range chunksPer(t, db) {
				if k.bucket <= 1 && n != 1 && (k.bucket != 1 || k.ref != bad) {
					t.Errorf("bucket %d series %d: %d chunks, want 1", k.bucket, k.ref, n)
				}
			}
			sameSelect(t, "other series", dbSelect(t, db, minInt64, maxInt64, others), want)
			if got := dbSelect(t, db, 0, 59_999, matchAll)[compactB.String()]; !reflect.DeepEqual(got, wantB0) {
				t.Fatalf("the malformed series' other bucket: got %v, want %v", got, wantB0)
			}
		})
	}
}

// TestCompactConcurrent: queries during compaction, checkpoints, out-of-
// order writes and retention read every sample exactly once. Run it with
// -race.
func TestCompactConcurrent(t *testing.T) {
	opts := compactTestOptions()
	opts.Retention = 2 * time.Minute
	opts.ChunkCacheBytes = 64 << 10
	db := openTestDB(t, t.TempDir(), opts)
	defer db.Close()
	const series, steps = 12, 400
	lsets := make([]labels.Labels, series)
	for s := range lsets {
		lsets[s] = labels.FromStrings("__name__", "m", "i", fmt.Sprint(s))
	}
	var newest atomic.Int64 // the newest step committed
	newest.Store(-1)
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer done.Store(true)
		for i := int64(0); i < steps; i++ {
			app := db.Appender()
			for s, ls := range lsets {
				if err := app.Append(ls, i*1000, float64(i)); err != nil {
					t.Error(err)
					return
				}
				if i > 20 && s%3 == 0 { // out of order, by 8.5 s
					if err := app.Append(ls, i*1000-8500, -float64(i)); err != nil {
						t.Error(err)
						return
					}
				}
			}
			if err := app.Commit(); err != nil {
				t.Error(err)
				return
			}
			newest.Store(i)
			if i%7 == 6 {
				if err := db.Checkpoint(); err != nil {
					t.Error(err)
					return
				}
			}
			if i%50 == 49 {
				if err := db.ApplyRetention(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	wg.Go(func() {
		for !done.Load() {
			if _, err := db.compact(nil); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond) // not a busy loop
		}
	})
	var checked atomic.Int64
	for range 2 {
		wg.Go(func() {
			for !done.Load() {
				// Everything up to n-9 s is committed by step n, the
				// out-of-order samples included.
				n := newest.Load() - 9
				got := dbSelect(t, db, minInt64, n*1000-1, matchAll)
				// Retention may have dropped anything before the bucket
				// two minutes behind the newest sample, and more since.
				from := (db.store.bucketOf((newest.Load()-120)*1000) + 1) * 60
				for _, ls := range lsets {
					checkConcurrentSeries(t, got[ls.String()], from, n, ls.Get("i"))
				}
				checked.Add(1)
			}
		})
	}
	// The chunk cache serves each reader the chunks its own snapshot
	// holds: merged or not, never the other. (The samples alone would not
	// tell: old and merged chunks hold the same ones.)
	var compared atomic.Int64
	wg.Go(func() {
		for !done.Load() {
			refs := cachedSeriesRefs(t, db)
			q, err := db.Querier(minInt64, maxInt64)
			if err != nil {
				t.Error(err)
				return
			}
			r := q.(*headQuerier).store
			u := uncached(r)
			first := db.store.bucketOf((newest.Load()-120)*1000) + 1
			for _, ref := range refs {
				for b := max(0, first); b <= db.store.bucketOf(newest.Load()*1000); b++ {
					chain := db.head.series.refs.chain(ref) // once: both reads see the same chain
					got, err1 := r.chunks(nil, ref, chain, b*60_000, b*60_000+59_999)
					want, err2 := u.chunks(nil, ref, chain, b*60_000, b*60_000+59_999)
					if err1 != nil || err2 != nil {
						t.Error(err1, err2)
						break
					}
					if b >= db.store.bucketOf((newest.Load()-120)*1000)+1 && !sameChunks(got, want) {
						t.Errorf("series %d bucket %d: got %s, the snapshot holds %s", ref, b, fmtChunks(got), fmtChunks(want))
					}
					compared.Add(1)
				}
			}
			closeUncached(u)
			q.Close()
		}
	})
	wg.Wait()
	if compared.Load() == 0 || testutil.ToFloat64(db.store.cache.hits) == 0 {
		t.Fatalf("the cache was not exercised: %d bucket reads compared, %v hits", compared.Load(), testutil.ToFloat64(db.store.cache.hits))
	}
	if checked.Load() == 0 || testutil.ToFloat64(db.metrics.compactionBuckets) == 0 || testutil.ToFloat64(db.metrics.bucketsDropped) == 0 {
		t.Fatalf("the test exercised nothing: %d reads, %v buckets compacted", checked.Load(), testutil.ToFloat64(db.metrics.compactionBuckets))
	}
	t.Logf("%d reads checked, %v buckets compacted, %v chunks merged", checked.Load(), testutil.ToFloat64(db.metrics.compactionBuckets), testutil.ToFloat64(db.metrics.compactionChunksMerged))
}

// checkConcurrentSeries: from second from to before n, every in-order
// sample (value = second) once, and every out-of-order one (at second -
// 8.5, for seconds past 20, series i%3 == 0) once.
func checkConcurrentSeries(t *testing.T, got []sample, from, n int64, i string) {
	t.Helper()
	var s int
	fmt.Sscan(i, &s)
	var want []sample
	for sec := max(from, 0); sec < n; sec++ {
		if s%3 == 0 && sec+9 > 20 {
			want = append(want, sample{t: sec*1000 + 500, v: -float64(sec + 9)})
		}
		want = append(want, sample{t: sec * 1000, v: float64(sec)})
	}
	// Samples out of order by 8.5 s land half a second past a second:
	// in time order, (sec, then sec+0.5).
	var cut []sample
	for _, smp := range got {
		if smp.t >= from*1000 {
			cut = append(cut, smp)
		}
	}
	slicesSortSamples(want)
	if !reflect.DeepEqual(cut, want) {
		for j := range min(len(cut), len(want)) {
			if cut[j] != want[j] {
				t.Errorf("series %s to %d s: sample %d = %v, want %v", i, n, j, cut[j], want[j])
				return
			}
		}
		t.Errorf("series %s to %d s: %d samples, want %d", i, n, len(cut), len(want))
	}
}

func slicesSortSamples(s []sample) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].t < s[j-1].t; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestAppendCompactRoundTrip: chunks written with appendCompact and with
// compactEncoder read back through chunkenc as the samples written, and
// the encoder's are no larger than appendCompact's and chunkenc's.
func TestAppendCompactRoundTrip(t *testing.T) {
	cases := map[string]func(i int) float64{
		"counter":    func(i int) float64 { return float64(i*37 + i*i%41) },
		"wide jumps": func(i int) float64 { return float64(i%5) * math.Pow(2, float64(i%40)) },
		"fractions":  func(i int) float64 { return float64(i) * 0.1 },
		"constant":   func(int) float64 { return 5 },
		"special":    func(i int) float64 { return []float64{0, math.Inf(1), -1, math.NaN(), 1e-300}[i%5] },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			var samples []sample
			for i := range 500 {
				samples = append(samples, sample{t: int64(i)*15000 + int64(i%3), v: f(i)})
			}
			checkAppendCompact(t, samples)
		})
	}
}

func checkAppendCompact(t *testing.T, samples []sample) {
	t.Helper()
	c, x := newXORChunk(0), newXORState()
	plain, px := newXORChunk(0), newXORState()
	var pt int64
	var pv uint64
	for _, s := range samples {
		c = x.appendCompact(c, pt, pv, s.t, s.v)
		plain = px.append(plain, pt, pv, s.t, s.v)
		pt, pv = s.t, math.Float64bits(s.v)
	}
	var e compactEncoder
	best := e.encode(samples)
	for name, data := range map[string][]byte{"appendCompact": c, "compactEncoder": best} {
		got := appendChunkSamples(nil, memChunk{data: data, minT: samples[0].t, maxT: pt}, minInt64, maxInt64)
		if len(got) != len(samples) {
			t.Fatalf("%s: %d samples read back, want %d", name, len(got), len(samples))
		}
		for i := range got {
			if got[i].t != samples[i].t || math.Float64bits(got[i].v) != math.Float64bits(samples[i].v) {
				t.Fatalf("%s: sample %d = %v, want %v", name, i, got[i], samples[i])
			}
		}
		if err := validChunk(memChunk{data: data, minT: samples[0].t, maxT: pt}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if len(best) > len(c) || len(best) > len(plain) {
		t.Fatalf("compactEncoder wrote %d bytes, appendCompact %d, chunkenc's appender %d", len(best), len(c), len(plain))
	}
}

func FuzzAppendCompact(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Fuzz(func(t *testing.T, data []byte) {
		var samples []sample
		var ts int64
		for len(data) >= 9 {
			ts += int64(data[0]) + 1
			samples = append(samples, sample{t: ts, v: math.Float64frombits(binary.LittleEndian.Uint64(data[1:9]))})
			data = data[9:]
		}
		if len(samples) == 0 || len(samples) > math.MaxUint16-1 {
			return
		}
		checkAppendCompact(t, samples)
	})
}

// TestCompactPassFromRun: the pass DB.run makes after each checkpoint
// compacts the complete buckets and counts them in the metrics.
func TestCompactPassFromRun(t *testing.T) {
	db := openTestDB(t, t.TempDir(), compactTestOptions())
	defer db.Close()
	for i := int64(0); i < 200; i++ {
		appendAt(t, db, compactA, i*1000, float64(i))
	}
	checkpoint(t, db)
	entries := 0 // of buckets 0 and 1, complete 30 s after 120 s
	for k, n := range chunksPer(t, db) {
		if k.bucket <= 1 {
			entries += n
		}
	}
	if entries < 2*60/5 { // chunks of about 4 samples
		t.Fatalf("%d chunk entries in buckets 0 and 1, want 24 or more", entries)
	}
	db.compactPass()
	if got := testutil.ToFloat64(db.metrics.compactionBuckets); got != 2 {
		t.Fatalf("%v buckets compacted, want 2", got)
	}
	if got := testutil.ToFloat64(db.metrics.compactionChunksMerged); got != float64(entries) {
		t.Fatalf("%v chunks merged, want the %d entries of buckets 0 and 1", got, entries)
	}
	if testutil.ToFloat64(db.metrics.compactionSeconds) <= 0 {
		t.Fatal("no duration of the last compaction")
	}
	if testutil.ToFloat64(db.metrics.compactionFailures) != 0 {
		t.Fatal("a failure counted")
	}
}

// FuzzCompactChunks: stored chunks of one series in one bucket, as bytes
// off the disk: compaction either reports them malformed, or writes
// chunks that decode to exactly what the read path reads from the
// originals.
func FuzzCompactChunks(f *testing.F) {
	st := &store{bucketRange: 60_000}
	var seed []byte
	for _, c := range []memChunk{
		encodeSamples([]sample{{1000, 1}, {2000, 2}, {3000, 4}}),
		encodeSamples([]sample{{2500, -1}, {3000, 9}}),
	} {
		v := appendChunkValue(nil, c)
		seed = append(append(binary.AppendUvarint(seed, uint64(len(v))), byte(c.minT/500)), v...)
	}
	f.Add(seed)
	// An integer chunk (as compaction writes them) and an XOR one.
	var e intEncoder
	ic, _ := e.encode(nil, []sample{{1000, 10}, {2000, 20}, {3500, 25}})
	seed = nil
	for _, c := range []memChunk{
		{data: ic, minT: 1000, maxT: 3500},
		encodeSamples([]sample{{2500, -1}, {3000, 9}}),
	} {
		v := appendChunkValue(nil, c)
		seed = append(append(binary.AppendUvarint(seed, uint64(len(v))), byte(c.minT/500)), v...)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		type entry struct {
			key []byte
			c   memChunk
		}
		var entries []entry
		for len(data) > 0 && len(entries) < 4 {
			n, k := binary.Uvarint(data)
			if k <= 0 || uint64(len(data)-k) < n+1 {
				return
			}
			minT := int64(data[k]) * 500
			val := data[k+1 : k+1+int(n)]
			data = data[k+1+int(n):]
			kind := chunkInOrder
			if len(entries)%2 == 1 {
				kind = chunkOutOfOrder
			}
			key := st.appendChunkKey(nil, 7, minT, kind, uint32(len(entries)))
			c, err := decodeStoredChunk(key, val)
			if err != nil {
				return // reported as malformed, left as it is
			}
			entries = append(entries, entry{key, c})
		}
		if len(entries) == 0 {
			return
		}
		// In key order, as badger lists them; one bucket.
		slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
		var cs compactSeries
		for _, e := range entries {
			if st.bucketOf(e.c.minT) != st.bucketOf(entries[0].c.minT) || st.bucketOf(e.c.maxT) != st.bucketOf(e.c.minT) {
				return // never written so: chunks lie in one bucket
			}
			cs.keys, cs.chunks = append(cs.keys, e.key), append(cs.chunks, e.c)
			cs.ooo = cs.ooo || e.key[25] == chunkOutOfOrder
		}
		want := readSamples(t, seriesSnapshot{chunks: cs.chunks}.iterator(nil, minInt64, maxInt64))
		var o compactOutput
		if _, err := o.add(st, &cs); err != nil {
			t.Fatal(err)
		}
		if len(o.series) == 0 {
			return // left as it was
		}
		var merged []memChunk
		for i, k := range o.series[0].keys {
			c, err := decodeStoredChunk(k, o.series[0].vals[i])
			if err != nil {
				t.Fatalf("merged chunk %d: %v", i, err)
			}
			merged = append(merged, c)
		}
		if overlapping(merged) {
			t.Fatalf("merged chunks overlap: %s", fmtChunks(merged))
		}
		got := readSamples(t, seriesSnapshot{chunks: merged}.iterator(nil, minInt64, maxInt64))
		if len(got) != len(want) {
			t.Fatalf("merged: %v\nread path: %v", got, want)
		}
		for i := range got {
			if got[i].t != want[i].t || math.Float64bits(got[i].v) != math.Float64bits(want[i].v) {
				t.Fatalf("sample %d: merged %v, read path %v", i, got[i], want[i])
			}
		}
	})
}

func readSamples(t *testing.T, it Iterator) []sample {
	var out []sample
	for it.Next() {
		ts, v := it.At()
		out = append(out, sample{ts, v})
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCompactFailureCounted: a pass that cannot read the store fails,
// is counted, and changes nothing.
func TestCompactFailureCounted(t *testing.T) {
	db := openTestDB(t, t.TempDir(), compactTestOptions())
	defer db.Close()
	for i := int64(0); i < 200; i++ {
		appendAt(t, db, compactA, i*1000, float64(i))
	}
	checkpoint(t, db)
	want := dbSelect(t, db, minInt64, maxInt64, matchAll)
	before := chunksPer(t, db)
	// A chunk key cut short sorts first in bucket 0.
	bad := binary.BigEndian.AppendUint64([]byte{prefixChunk}, flipSign(0))
	if err := db.store.db.Update(func(txn *badger.Txn) error { return txn.Set(bad, []byte{0}) }); err != nil {
		t.Fatal(err)
	}
	if _, err := db.compact(nil); err == nil {
		t.Fatal("a store with a malformed chunk key compacted")
	}
	if got := testutil.ToFloat64(db.metrics.compactionFailures); got != 1 {
		t.Fatalf("%v failures counted, want 1", got)
	}
	if err := db.store.db.Update(func(txn *badger.Txn) error { return txn.Delete(bad) }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(chunksPer(t, db), before) {
		t.Fatal("a failed pass changed the chunks")
	}
	sameSelect(t, "after a failed pass", dbSelect(t, db, minInt64, maxInt64, matchAll), want)
}

// TestCompactMovesMalformedJournalChunks: a journal record whose chunk
// does not decode is reported, and its series' chunks of that bucket go
// to badger as they are (once the bucket is marked compacted the
// journal's records of it are dead); every other series is merged.
func TestCompactMovesMalformedJournalChunks(t *testing.T) {
	db := openTestDB(t, t.TempDir(), compactTestOptions())
	defer db.Close()
	for i := int64(0); i < 200; i++ { // buckets 0 and 1 complete
		for _, ls := range []labels.Labels{compactA, compactB, compactC} {
			appendAt(t, db, ls, i*1000, float64(i)+0.5) // fractions: XOR chunks, whose header the corruption targets
		}
	}
	checkpoint(t, db)
	bad := refOf(t, db, compactB)
	// Chain a copy of its newest chunk of bucket 1 to B, its header
	// claiming a sample more than it holds.
	head := db.head.series.refs.chain(bad)
	var victim journalRecord
	for pos := head; pos != 0; {
		rec, _, err := db.journal.read(pos, nil)
		if err != nil {
			t.Fatal(err)
		}
		if db.store.bucketOf(rec.chunk.minT) == 1 {
			victim = rec
			break
		}
		pos = rec.prev
	}
	if victim.chunk.data == nil {
		t.Fatal("no chunk of series b in bucket 1")
	}
	broken := victim
	broken.chunk.data = slices.Clone(victim.chunk.data)
	binary.BigEndian.PutUint16(broken.chunk.data, binary.BigEndian.Uint16(broken.chunk.data)+1)
	headRec, _, err := db.journal.read(head, nil)
	if err != nil {
		t.Fatal(err)
	}
	broken.prev, broken.prevMaxT, broken.seq, broken.kind = head, max(headRec.chunk.maxT, headRec.prevMaxT), 1, chunkOutOfOrder
	if validChunk(broken.chunk) == nil {
		t.Fatal("the chunk with a sample too many is valid")
	}
	pos, err := db.journal.append(broken, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.journal.flush(); err != nil {
		t.Fatal(err)
	}
	db.head.series.refs.setChain(bad, pos)
	before := chunksPer(t, db)[cacheKey{bucket: 1, ref: bad}]
	others := labels.MustNewMatcher(labels.MatchNotEqual, "__name__", "b")
	want := dbSelect(t, db, minInt64, maxInt64, others)
	st := compactAll(t, db)
	if st.malformed != 1 || st.buckets != 2 {
		t.Fatalf("malformed journal chunk: %+v, want it reported and both buckets compacted", st)
	}
	inBadger := badgerChunksPer(t, db)
	if n := inBadger[cacheKey{bucket: 1, ref: bad}]; n != before {
		t.Fatalf("series b's bucket 1: %d chunks in badger, want its %d journal chunks as they were", n, before)
	}
	for k, n := range chunksPer(t, db) {
		if k.bucket <= 1 && k.ref != bad && n != 1 {
			t.Errorf("bucket %d series %d: %d chunks, want 1", k.bucket, k.ref, n)
		}
	}
	sameSelect(t, "other series", dbSelect(t, db, minInt64, maxInt64, others), want)
}

// TestEvictionAfterJournalSegmentsRemoved evicts a series whose chain
// reaches records of compacted buckets whose segments are gone: moving
// the chain to badger stops before them (it read the first of them and
// failed the checkpoint), and every sample stays readable.
func TestEvictionAfterJournalSegmentsRemoved(t *testing.T) {
	db := openTestDB(t, t.TempDir(), compactTestOptions())
	defer func() { db.Close() }()
	const sec = 1000
	segments := func() []uint32 {
		segs, err := journalSegments(filepath.Join(db.dir, "chunks"))
		if err != nil {
			t.Fatal(err)
		}
		return segs
	}
	// b, created first, comes first in a checkpoint: at the boundary its
	// last record of bucket 1 goes to the segment before the one bucket
	// 2 starts, which goes once bucket 1 is compacted.
	for i := int64(0); i <= 260; i++ { // b until 210 s (in bucket 3), a throughout
		if i <= 210 {
			appendAt(t, db, compactB, i*sec, float64(i*sec))
		}
		appendAt(t, db, compactA, i*sec, float64(i*sec))
		if i%20 == 19 {
			checkpoint(t, db)
		}
		if i == 200 { // buckets 0 and 1 complete, 2 not; b evicted after their segments went
			before := segments()
			if st := compactAll(t, db); st.buckets != 2 {
				t.Fatalf("%d buckets compacted, want 2", st.buckets)
			}
			checkpoint(t, db) // removes their segments
			if after := segments(); len(after) == 0 || after[0] <= before[0] {
				t.Fatalf("journal segments %v, before %v: none of the compacted buckets' went", after, before)
			}
		}
	}
	checkpoint(t, db) // b leaves the active set
	checkpoint(t, db) // and memory, its chain moved to badger
	if n := db.head.NumIndexedSeries(); n != 1 {
		t.Fatalf("%d series in memory, want b evicted", n)
	}
	got := dbSelect(t, db, 0, 260*sec, matchAll)
	checkSeries(t, got[compactB.String()], 0, sec, 211)
	checkSeries(t, got[compactA.String()], 0, sec, 261)
}
