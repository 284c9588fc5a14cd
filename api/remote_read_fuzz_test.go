package api

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
)

// FuzzRemoteReadDecode runs the decode path of /api/v1/read on any body,
// compressed as sent or compressed by the target, against prompb's
// generated decoder: it never panics, refuses with a 4xx class, counts
// the queries before decoding exactly as prompb finds them, and accepts
// what it accepts with every query and matcher kept.
func FuzzRemoteReadDecode(f *testing.F) {
	seeds := []*prompb.ReadRequest{
		{Queries: []*prompb.Query{{StartTimestampMs: 1, EndTimestampMs: 2,
			Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_EQ, Name: "job", Value: "etcd"}}}}},
		{Queries: []*prompb.Query{
			{StartTimestampMs: -5, EndTimestampMs: 1 << 40, Matchers: []*prompb.LabelMatcher{
				{Type: prompb.LabelMatcher_RE, Name: "__name__", Value: "etcd_.+"},
				{Type: prompb.LabelMatcher_NEQ, Name: "instance", Value: ""}},
				Hints: &prompb.ReadHints{StepMs: 15000, Func: "rate", StartMs: 0, EndMs: 1 << 39, Grouping: []string{"job"}, By: true, RangeMs: 300000}},
			{Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_NRE, Name: "job", Value: "a|b"}}, Hints: &prompb.ReadHints{Func: "series"}},
		}, AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS, prompb.ReadRequest_SAMPLES}},
		{AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{5}},
	}
	for _, s := range seeds {
		raw, err := s.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, true)
		f.Add(snappy.Encode(nil, raw), false)
	}
	f.Add([]byte{0x0a, 0x02, 0x1a, 0x05}, true)
	f.Add([]byte{0x08, 0x01}, true)
	f.Add([]byte("not snappy"), false)
	f.Add([]byte{}, false)
	lim := remoteReadLimits{maxBodyBytes: 1 << 16, maxQueries: 4, maxMatcherBytes: 1 << 10}
	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		body := data
		if compress {
			body = snappy.Encode(nil, data)
		}
		qs, typ, err := decodeReadRequest(body, lim)
		if err != nil {
			if code := remoteReadStatus(err); code != 400 && code != 413 {
				t.Fatalf("error %v answered %d", err, code)
			}
		}
		raw, serr := snappy.Decode(nil, body)
		if serr != nil || len(raw) > lim.maxBodyBytes {
			if err == nil {
				t.Fatalf("accepted a body snappy refuses or over the limit (%d bytes)", len(raw))
			}
			return
		}
		var req prompb.ReadRequest
		perr := req.Unmarshal(raw)
		n, cerr := countQueries(raw)
		if perr == nil && (cerr != nil || n != len(req.Queries)) {
			t.Fatalf("prompb decodes %d queries, the scan %d (%v)", len(req.Queries), n, cerr)
		}
		if err != nil {
			return
		}
		if perr != nil {
			t.Fatalf("accepted what prompb refuses: %v", perr)
		}
		if len(qs) != len(req.Queries) || len(qs) == 0 || len(qs) > lim.maxQueries {
			t.Fatalf("%d queries, prompb %d", len(qs), len(req.Queries))
		}
		if typ != prompb.ReadRequest_SAMPLES && typ != prompb.ReadRequest_STREAMED_XOR_CHUNKS {
			t.Fatalf("response type %v", typ)
		}
		for i, q := range qs {
			if len(q.matchers) != len(req.Queries[i].Matchers) || !hasNonEmptyMatcher(q.matchers) {
				t.Fatalf("query %d: %d matchers, prompb %d", i, len(q.matchers), len(req.Queries[i].Matchers))
			}
			if q.mint < req.Queries[i].StartTimestampMs || q.maxt > req.Queries[i].EndTimestampMs {
				t.Fatalf("query %d widened to [%d, %d]", i, q.mint, q.maxt)
			}
		}
	})
}

// FuzzFrameWriter round-trips samples through the streamed encoding:
// any series (times and values from the input, a frame bound between
// the smallest useful and 64 KiB) reads back whole, sample for sample,
// from frames within the bound, each CRC-checked.
func FuzzFrameWriter(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, uint16(0))
	f.Add(bytes.Repeat([]byte{0xff, 0, 0x80, 7, 1, 2, 3, 4, 5}, 400), uint16(3000))
	f.Add([]byte{}, uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, frame uint16) {
		s := &fakeSeries{lset: labels.FromStrings("__name__", "fuzz", "job", "etcd")}
		ts := int64(binary.BigEndian.Uint64(append(make([]byte, 8), data...)[len(data):]))
		ts >>= 2 // room for the deltas
		for len(data) >= 9 {
			ts += int64(data[0]) * int64(data[0]) * 37
			s.samples = append(s.samples, prompb.Sample{Timestamp: ts, Value: math.Float64frombits(binary.LittleEndian.Uint64(data[1:9]))})
			data = data[9:]
		}
		maxFrame := 2048 + int(frame)
		var buf bytes.Buffer
		fw := newFrameWriter(&buf, maxFrame)
		if err := fw.writeSeries(0, s, s.Iterator(nil)); err != nil {
			t.Fatal(err)
		}
		got := readFrames(t, bytes.NewReader(buf.Bytes()), maxFrame)
		if len(s.samples) == 0 {
			if len(got) != 0 {
				t.Fatalf("frames for a series without samples")
			}
			return
		}
		if len(got) != 1 || len(got[0]) != 1 || len(got[0][0].Samples) != len(s.samples) {
			t.Fatalf("%d samples in, %v out", len(s.samples), got)
		}
		for i, g := range got[0][0].Samples {
			if g.Timestamp != s.samples[i].Timestamp || math.Float64bits(g.Value) != math.Float64bits(s.samples[i].Value) {
				t.Fatalf("sample %d: %v, want %v", i, g, s.samples[i])
			}
		}
	})
}
