package bench

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
)

// captureFile is the gzipped /metrics page of a real etcd member that
// the synthetic fleet is generated from (see TestCaptureEtcdMetrics).
const captureFile = "etcd-metrics.txt.gz"

//go:embed testdata/etcd-metrics.txt.gz
var capturedEtcdMetrics []byte

// CapturedEtcdMetrics returns the text of the embedded capture.
func CapturedEtcdMetrics() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(capturedEtcdMetrics))
	if err != nil {
		return nil, fmt.Errorf("open embedded etcd capture: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("read embedded etcd capture: %w", err)
	}
	return b, nil
}
