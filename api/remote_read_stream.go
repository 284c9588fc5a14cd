package api

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/etcdgate/etcdgate/tsdb"
)

// The STREAMED_XOR_CHUNKS answer of remote read is a sequence of frames,
// each
//
//	uvarint  length of data
//	uint32   CRC-32 (Castagnoli) of data, big endian
//	data     a prompb.ChunkedReadResponse:
//	         message ChunkedReadResponse {
//	           repeated ChunkedSeries chunked_series = 1; // one series here
//	           int64 query_index = 2;
//	         }
//
// with one series per frame, a series cut over several frames when its
// chunks do not fit one, the series of a query in label order and the
// queries in request order. Frames go out as they are made: memory holds
// one frame, not the answer.

// remoteReadChunkSamples is the samples of an XOR chunk: Prometheus's
// head cuts its chunks at 120.
const remoteReadChunkSamples = 120

// Worst-case sizes, for cutting a frame before it would exceed its
// bound: an XOR sample takes at most 2+64 bits of timestamp delta and
// 2+5+6+64 bits of value (18 bytes), the first two samples more; a
// chunk's fields (times, encoding, length) and its entry in the series
// take at most chunkOverhead bytes; the frame's own fields (series
// entry, query index) frameOverhead.
const (
	xorSampleMaxBytes = 20
	xorHeadMaxBytes   = 2 + 10 + 8 + 10 + 9
	chunkOverhead     = 2*11 + 2 + 4 + 4
	frameOverhead     = 32
)

var remoteReadCRC = crc32.MakeTable(crc32.Castagnoli)

// remoteReadStream answers STREAMED_XOR_CHUNKS. An error before the
// first frame is answered with its status; after it, the stream is cut
// (http.ErrAbortHandler), so that the client does not take a partial
// answer for a whole one, as Prometheus does.
func (a *API) remoteReadStream(ctx context.Context, w http.ResponseWriter, store tsdb.Queryable, queries []readQuery) {
	w.Header().Set("Content-Type", remoteReadStreamType)
	fw := newFrameWriter(w, remoteReadFrameBytes)
	for i, q := range queries {
		if err := streamQuery(ctx, fw, store, int64(i), q); err != nil {
			if fw.started {
				if ok, held := a.remoteReadLogs.Allow("cut", time.Now()); ok {
					a.opts.Logger.Warn("remote read stream cut", "err", err, "query_index", i, "suppressed", held)
				}
				panic(http.ErrAbortHandler)
			}
			remoteReadError(w, err)
			return
		}
	}
	if !fw.started {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w).Flush()
}

// streamQuery writes one query's series, in label order, as frames.
func streamQuery(ctx context.Context, fw *frameWriter, store tsdb.Queryable, index int64, q readQuery) error {
	if q.maxt < q.mint {
		return nil
	}
	qr, err := store.Querier(q.mint, q.maxt)
	if err != nil {
		return err
	}
	defer qr.Close()
	set := qr.Select(ctx, q.matchers...)
	var it tsdb.Iterator
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := set.At()
		it = s.Iterator(it)
		if err := fw.writeSeries(index, s, it); err != nil {
			return err
		}
	}
	return set.Err()
}

// frameWriter encodes series as frames of at most maxFrame bytes,
// reusing its buffers and chunk encoders from frame to frame.
type frameWriter struct {
	w        io.Writer
	maxFrame int
	started  bool // a byte of the answer was written

	resp   prompb.ChunkedReadResponse
	series prompb.ChunkedSeries
	lbls   []prompb.Label
	chunks []prompb.Chunk
	// xors are the encoders of the frame's chunks; those past
	// len(chunks) are free to reuse.
	xors []*chunkenc.XORChunk
	buf  []byte
}

func newFrameWriter(w io.Writer, maxFrame int) *frameWriter {
	fw := &frameWriter{w: w, maxFrame: maxFrame}
	fw.resp.ChunkedSeries = []*prompb.ChunkedSeries{&fw.series}
	return fw
}

// writeSeries writes the samples of it as XOR chunks of s, in frames.
// A series without samples writes nothing.
func (fw *frameWriter) writeSeries(index int64, s tsdb.Series, it tsdb.Iterator) error {
	fw.lbls = prompb.FromLabels(s.Labels(), fw.lbls[:0])
	budget := fw.maxFrame - frameOverhead
	for _, l := range fw.lbls {
		budget -= l.Size() + 4
	}
	// A label set near the frame's size still gets a chunk per frame:
	// it cannot be cut.
	budget = max(budget, chunkOverhead+xorHeadMaxBytes+remoteReadChunkSamples*xorSampleMaxBytes)
	used := 0
	var (
		cur        *chunkenc.XORChunk
		app        chunkenc.Appender
		n          int
		mint, maxt int64
	)
	closeChunk := func() {
		fw.chunks = append(fw.chunks, prompb.Chunk{MinTimeMs: mint, MaxTimeMs: maxt, Type: prompb.Chunk_XOR, Data: cur.Bytes()})
		used += chunkOverhead + len(cur.Bytes())
		cur, n = nil, 0
	}
	for it.Next() {
		t, v := it.At()
		if cur != nil && (n == remoteReadChunkSamples || used+chunkOverhead+len(cur.Bytes())+xorSampleMaxBytes > budget) {
			closeChunk()
		}
		if cur == nil {
			if used+chunkOverhead+xorHeadMaxBytes > budget {
				if err := fw.flush(index); err != nil {
					return err
				}
				used = 0
			}
			cur = fw.newChunk()
			var err error
			if app, err = cur.Appender(); err != nil {
				return fmt.Errorf("BUG: XOR appender: %w", err)
			}
			mint = t
		}
		app.Append(0, t, v)
		maxt = t
		n++
	}
	if err := it.Err(); err != nil {
		return err
	}
	if cur != nil {
		closeChunk()
	}
	if len(fw.chunks) > 0 {
		return fw.flush(index)
	}
	return nil
}

// newChunk returns an empty XOR chunk, reusing a free encoder.
func (fw *frameWriter) newChunk() *chunkenc.XORChunk {
	i := len(fw.chunks)
	if i < len(fw.xors) {
		c := fw.xors[i]
		b := c.Bytes()[:2]
		b[0], b[1] = 0, 0 // the header: no samples
		c.Reset(b)
		return c
	}
	c := chunkenc.NewXORChunk()
	fw.xors = append(fw.xors, c)
	return c
}

// flush writes the frame of the chunks gathered so far and starts the
// next.
func (fw *frameWriter) flush(index int64) error {
	fw.series.Labels, fw.series.Chunks = fw.lbls, fw.chunks
	fw.resp.QueryIndex = index
	size := fw.resp.Size()
	if size > fw.maxFrame {
		return fmt.Errorf("BUG: remote read frame of %d bytes, bound %d", size, fw.maxFrame)
	}
	const hdr = binary.MaxVarintLen64 + 4
	if cap(fw.buf) < hdr+size {
		fw.buf = make([]byte, hdr+size)
	}
	buf := fw.buf[:hdr+size]
	data := buf[hdr:]
	if _, err := fw.resp.MarshalToSizedBuffer(data); err != nil {
		return fmt.Errorf("marshal ChunkedReadResponse: %w", err)
	}
	// The header goes right before data: uvarint length, then CRC.
	var lenBuf [binary.MaxVarintLen64]byte
	nl := binary.PutUvarint(lenBuf[:], uint64(size))
	start := hdr - 4 - nl
	copy(buf[start:], lenBuf[:nl])
	binary.BigEndian.PutUint32(buf[hdr-4:], crc32.Checksum(data, remoteReadCRC))
	fw.chunks = fw.chunks[:0]
	fw.started = true
	if _, err := fw.w.Write(buf[start:]); err != nil {
		return fmt.Errorf("%w: %w", errReadClientGone, err)
	}
	return nil
}

// errReadClientGone: writing the answer failed.
var errReadClientGone = errors.New("writing the remote read answer")
