package api

import (
	"testing"

	"github.com/golang/snappy"
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
