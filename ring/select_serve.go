package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/tsdb"
)

// selectSink receives what a select finds, one series or string at a
// time. It must not keep samples or chunks after it returns. A series
// comes as a label set (listings) or as the store's series (selects),
// whose labels the sink reads as it needs them.
type selectSink interface {
	series(ls seriesLabels, samples []Sample) error
	chunks(ls seriesLabels, chunks []tsdb.Chunk) error
	str(s string) error
	digest(d SeriesDigest) error
}

// seriesLabels is a label set, or the store's series that has one.
type seriesLabels struct {
	lset   labels.Labels
	series tsdb.Series // nil: lset
}

func (sl seriesLabels) labels() labels.Labels {
	if sl.series != nil {
		return sl.series.Labels()
	}
	return sl.lset
}

// encode encodes the labels for a frame into buf, straight from the
// store's symbols when it can.
func (sl seriesLabels) encode(buf []byte) frameLabels {
	if la, ok := sl.series.(tsdb.LabelAppender); ok {
		pairs, n := la.AppendLabels(buf[:0], appendLabelPair)
		return frameLabels{n: n, pairs: pairs}
	}
	return encodeFrameLabels(buf, sl.labels())
}

// runSelect answers req from q (a LOCAL store's querier) into sink. The
// series limit is applied while the store collects the series (series
// mode: tsdb.WithSeriesLimit), or by stopping the listing (labels mode).
func runSelect(ctx context.Context, q tsdb.Querier, req SelectRequest, sink selectSink) error {
	switch req.Mode {
	case SelectSeries:
		// Unsorted: the asking node merges by label hash and sorts the
		// distinct series only if its caller wants them sorted.
		set := q.SelectUnsorted(tsdb.WithSeriesLimit(ctx, req.Limit), req.Matchers...)
		var it tsdb.Iterator
		var buf []Sample
		var chunks []tsdb.Chunk
		var head []byte // the open chunk's copy
		trimmer := &chunkTrimmer{mint: req.Mint, maxt: req.Maxt}
		var k keyHasher
		for set.Next() {
			s := set.At()
			if req.Keys != nil && !req.Keys.has(k.key(s)) {
				continue
			}
			if cs, ok := s.(tsdb.ChunkSeries); ok && req.Chunks {
				var err error
				if chunks, head, ok, err = cs.Chunks(chunks[:0], head[:0]); err != nil {
					return err
				}
				if ok {
					trimmed, err := trimmer.trim(chunks)
					if err != nil {
						return err
					}
					if err := sink.chunks(seriesLabels{series: s}, trimmed); err != nil {
						return err
					}
					continue
				}
			}
			it = s.Iterator(it)
			buf = buf[:0]
			for it.Next() {
				t, v := it.At()
				buf = append(buf, Sample{T: t, V: v})
			}
			if err := it.Err(); err != nil {
				return err
			}
			if err := sink.series(seriesLabels{series: s}, buf); err != nil {
				return err
			}
		}
		return set.Err()
	case SelectDigests:
		set := q.SelectUnsorted(tsdb.WithSeriesLimit(ctx, req.Limit), req.Matchers...)
		return selectDigests(set, req.Keys, req.Mint, req.Maxt, sink)
	case SelectLabels:
		n := 0
		var sinkErr error
		fn := func(l labels.Labels) bool {
			if sinkErr = sink.series(seriesLabels{lset: l}, nil); sinkErr != nil {
				return false
			}
			n++
			return n < req.Limit
		}
		var err error
		if l, ok := q.(tsdb.SeriesLister); ok {
			err = l.ListSeries(ctx, fn, req.Matchers...)
		} else {
			set := q.SelectUnsorted(ctx, req.Matchers...)
			for set.Next() && fn(set.At().Labels()) {
			}
			err = set.Err()
		}
		return errors.Join(err, sinkErr)
	case SelectNames, SelectValues:
		if req.Limit > 0 {
			ctx = tsdb.WithSeriesLimit(ctx, req.Limit)
		}
		var strs []string
		var err error
		if req.Mode == SelectNames {
			strs, err = q.LabelNames(ctx, req.Matchers...)
		} else {
			strs, err = q.LabelValues(ctx, req.Name, req.Matchers...)
		}
		if err != nil {
			return err
		}
		for _, s := range strs {
			if err := sink.str(s); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("ring: unknown select mode %q", req.Mode)
}

// flushBytes is how much of an answer is buffered before it is written
// to the compressed stream.
const flushBytes = 64 << 10

// WriteSelect answers req from the local querier q as the select
// endpoint's stream (select_codec.go) to w: frames as they are found,
// then an end frame, or an error frame when the select fails (the
// node's series limit is marked so). It returns the error of writing to
// w; the select's own error went into the stream.
func WriteSelect(ctx context.Context, q tsdb.Querier, req SelectRequest, w io.Writer) error {
	sw := &streamSink{w: NewSelectWriter(w)}
	err := runSelect(ctx, q, req, sw)
	if err == nil {
		err = sw.flushDigests()
	}
	if sw.werr != nil {
		return sw.werr
	}
	if err != nil {
		sw.buf = AppendErrorFrame(sw.buf, errors.Is(err, tsdb.ErrTooManySeries), err.Error())
	} else {
		sw.buf = AppendEndFrame(sw.buf)
	}
	if err := sw.flush(); err != nil {
		return err
	}
	return sw.w.Close()
}

// streamSink writes frames to the compressed stream.
type streamSink struct {
	w interface {
		io.Writer
		Close() error
	}
	buf     []byte
	lbuf    []byte // a series' encoded labels
	digests []SeriesDigest
	werr    error
}

func (s *streamSink) series(ls seriesLabels, samples []Sample) error {
	fl := ls.encode(s.lbuf)
	s.lbuf = fl.pairs
	s.buf = appendSeriesFrames(s.buf, fl, samples)
	return s.maybeFlush()
}

func (s *streamSink) chunks(ls seriesLabels, chunks []tsdb.Chunk) error {
	fl := ls.encode(s.lbuf)
	s.lbuf = fl.pairs
	s.buf = appendChunkSeriesFrames(s.buf, fl, chunks)
	return s.maybeFlush()
}

func (s *streamSink) str(v string) error {
	s.buf = AppendStringFrame(s.buf, v)
	return s.maybeFlush()
}

func (s *streamSink) digest(d SeriesDigest) error {
	if s.digests = append(s.digests, d); len(s.digests) == digestsPerFrame {
		return s.flushDigests()
	}
	return nil
}

// flushDigests writes the digests held back into one frame.
func (s *streamSink) flushDigests() error {
	if len(s.digests) == 0 {
		return nil
	}
	s.buf = appendDigestFrame(s.buf, s.digests)
	s.digests = s.digests[:0]
	return s.maybeFlush()
}

func (s *streamSink) maybeFlush() error {
	if len(s.buf) < flushBytes {
		return nil
	}
	return s.flush()
}

func (s *streamSink) flush() error {
	if s.werr != nil {
		return s.werr
	}
	if _, err := s.w.Write(s.buf); err != nil {
		s.werr = err
		return err
	}
	s.buf = s.buf[:0]
	return nil
}

// collectSink keeps what the local store answers, within the same bound
// of bytes as a peer's answer.
type collectSink struct {
	res        SelectResult
	bytes      int64
	maxBytes   int64
	shared     *atomic.Int64 // the read's budget over all nodes
	sharedMax  int64
	data       []byte       // arena of the chunks' copies
	chunkArena []tsdb.Chunk // arena of the series' chunk lists
}

func (c *collectSink) charge(n int64) error {
	if c.bytes += n; c.bytes > c.maxBytes {
		return fmt.Errorf("ring: the local answer is larger than the limit of %d bytes", c.maxBytes)
	}
	if c.shared != nil && c.shared.Add(n) > c.sharedMax {
		return fmt.Errorf("%w: the nodes' answers to one read are larger than the limit of %d bytes", ErrReadTooLarge, c.sharedMax)
	}
	return nil
}

func (c *collectSink) series(ls seriesLabels, samples []Sample) error {
	lset := ls.labels()
	if err := c.charge(int64(lset.ByteSize()) + 16*int64(len(samples))); err != nil {
		return err
	}
	var cp []Sample
	if len(samples) > 0 {
		cp = append(make([]Sample, 0, len(samples)), samples...)
	}
	c.res.Series = append(c.res.Series, SelectedSeries{Labels: lset, Samples: cp})
	return nil
}

// chunks keeps a copy of the chunks: their data is the store's, valid
// only while its querier is open.
func (c *collectSink) chunks(ls seriesLabels, chunks []tsdb.Chunk) error {
	lset := ls.labels()
	size := 0
	for _, ch := range chunks {
		size += len(ch.Data)
	}
	if err := c.charge(int64(lset.ByteSize()) + int64(size) + 24*int64(len(chunks))); err != nil {
		return err
	}
	if cap(c.data)-len(c.data) < size {
		c.data = make([]byte, 0, max(chunkArenaBytes, size))
	}
	if cap(c.chunkArena)-len(c.chunkArena) < len(chunks) {
		c.chunkArena = make([]tsdb.Chunk, 0, max(chunkSliceArenaLen, len(chunks)))
	}
	start := len(c.chunkArena)
	for _, ch := range chunks {
		n := len(c.data)
		c.data = append(c.data, ch.Data...)
		c.chunkArena = append(c.chunkArena, tsdb.Chunk{MinT: ch.MinT, MaxT: ch.MaxT, Data: c.data[n:len(c.data):len(c.data)]})
	}
	end := len(c.chunkArena)
	c.res.Series = append(c.res.Series, SelectedSeries{Labels: lset, Chunks: c.chunkArena[start:end:end]})
	return nil
}

func (c *collectSink) digest(d SeriesDigest) error {
	if err := c.charge(16); err != nil {
		return err
	}
	c.res.Digests = append(c.res.Digests, d)
	return nil
}

func (c *collectSink) str(v string) error {
	if err := c.charge(int64(len(v))); err != nil {
		return err
	}
	c.res.Strings = append(c.res.Strings, v)
	return nil
}
