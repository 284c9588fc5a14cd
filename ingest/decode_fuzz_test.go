package ingest

import (
	"errors"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// FuzzUnmarshalWriteRequest holds Unmarshal to prompb: for every input both
// accept or both refuse, and when both accept they agree on every label,
// sample (bit for bit), and on the exemplar, histogram and metadata counts.
// Seeds: the well-formed cases of decode_test.go here, and hand-made and
// found inputs in testdata/fuzz/FuzzUnmarshalWriteRequest.
func FuzzUnmarshalWriteRequest(f *testing.F) {
	for _, tc := range decodeCases() {
		if tc.name != "many series" { // too big to mutate usefully
			f.Add(tc.bytes(f))
		}
	}
	f.Add(decodeCase{req: etcdWriteRequests(1, 2, 3, testTS)[0]}.bytes(f))
	// The WriteRequest is reused so that stale state from the last input
	// would show up as a disagreement.
	var got WriteRequest
	f.Fuzz(func(t *testing.T, data []byte) {
		var want prompb.WriteRequest
		wantErr := want.Unmarshal(data)
		err := got.Unmarshal(data)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("Unmarshal error %v, prompb error %v", err, wantErr)
		}
		if err != nil {
			if !errors.Is(err, ErrBadProtobuf) {
				t.Fatalf("error %q does not wrap ErrBadProtobuf", err)
			}
			return
		}
		requireSameRequest(t, &want, &got)
	})
}

// FuzzDecodeV2 holds UnmarshalV2 to the generated writev2 type: what
// writev2 refuses, UnmarshalV2 refuses; what writev2 accepts, UnmarshalV2
// accepts exactly when refDecodeV2 finds it a valid request (symbols,
// references), and then they agree on every label, sample (bit for
// bit), count and metadata entry. Seeds: the cases of decode_v2_test.go
// and testdata/fuzz/FuzzDecodeV2.
func FuzzDecodeV2(f *testing.F) {
	for name, data := range v2Cases(f) {
		if name != "etcd fleet" { // too big to mutate usefully
			f.Add(data)
		}
	}
	// The WriteRequest is reused so that stale state from the last input
	// would show up as a disagreement.
	var got WriteRequest
	f.Fuzz(func(t *testing.T, data []byte) {
		var want writev2.Request
		wantErr := want.Unmarshal(data)
		err := got.UnmarshalV2(data)
		if err != nil && !errors.Is(err, ErrBadProtobuf) {
			t.Fatalf("error %q does not wrap ErrBadProtobuf", err)
		}
		if wantErr != nil {
			if err == nil {
				t.Fatalf("UnmarshalV2 accepts what writev2 refuses: %v", wantErr)
			}
			return
		}
		if _, _, refErr := refDecodeV2(&want); (err == nil) != (refErr == nil) {
			t.Fatalf("UnmarshalV2 error %v, reference error %v", err, refErr)
		}
		if err == nil {
			requireSameRequestV2(t, &want, &got)
		}
	})
}
