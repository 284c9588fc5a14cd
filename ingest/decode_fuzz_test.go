package ingest

import (
	"errors"
	"testing"

	"github.com/prometheus/prometheus/prompb"
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
