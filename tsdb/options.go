package tsdb

import (
	"fmt"
	"time"
)

// HeadOptions configure the in-memory head.
type HeadOptions struct {
	// OutOfOrderWindow is how far behind the newest sample of a series a
	// sample may be and still be accepted. Zero disables out-of-order
	// ingestion.
	OutOfOrderWindow time.Duration
	// ChunkSamples is the number of samples a head chunk aims at; 120 as
	// in Prometheus, which keeps XOR chunks near their best compression
	// while bounding the cost of decoding one. A series' chunk range is
	// divided into chunks of even length as near it as they can be, so a
	// chunk may hold a few more (at most twice as many when samples come
	// faster as it fills) or fewer (series_append.go).
	ChunkSamples int
	// OutOfOrderCapacity is the number of out-of-order samples a series
	// buffers before they are encoded into a chunk.
	OutOfOrderCapacity int
	// StripeSize is the number of lock stripes of the series maps; a power
	// of two.
	StripeSize int
	// ChunkRange is the longest a head chunk spans, and the length of the
	// store's time buckets, which retention drops whole. Each series'
	// ranges are shifted by a phase of its own, so that series do not all
	// close their chunks at once; a chunk that spans a bucket boundary is
	// split there as it is written (series_append.go).
	ChunkRange time.Duration
	// Limits bound the head; they can change at run time (Head.SetLimits).
	Limits HeadLimits
	// Metadata bounds the metric metadata the head keeps (metadata.go).
	Metadata MetadataOptions
}

// HeadLimits is the head's memory ceiling. Past either limit new series
// are refused while existing series keep ingesting. Zero means no limit.
type HeadLimits struct {
	MaxSeries int64 // active series
	MaxBytes  int64 // bytes the head accounts for its series and chunks
}

// DefaultHeadOptions returns the options etcdgate runs with by default.
func DefaultHeadOptions() HeadOptions {
	return HeadOptions{
		OutOfOrderWindow:   10 * time.Minute,
		ChunkSamples:       120,
		OutOfOrderCapacity: 32,
		StripeSize:         1 << 14,
		ChunkRange:         2 * time.Hour,
		Metadata:           DefaultMetadataOptions(),
	}
}

// Validate reports the first invalid option.
func (o HeadOptions) Validate() error {
	switch {
	case o.OutOfOrderWindow < 0:
		return fmt.Errorf("out-of-order window %s is negative", o.OutOfOrderWindow)
	case o.ChunkSamples < 1 || o.ChunkSamples > maxXORSamples:
		// At most maxXORSamples: integer chunks' tag stays free (intchunk.go).
		return fmt.Errorf("chunk samples %d outside 1..%d", o.ChunkSamples, maxXORSamples)
	case o.OutOfOrderCapacity < 1 || o.OutOfOrderCapacity > maxXORSamples:
		return fmt.Errorf("out-of-order capacity %d outside 1..%d", o.OutOfOrderCapacity, maxXORSamples)
	case o.StripeSize < 1 || o.StripeSize&(o.StripeSize-1) != 0:
		return fmt.Errorf("stripe size %d is not a power of two", o.StripeSize)
	case o.ChunkRange < time.Minute:
		return fmt.Errorf("chunk range %s is shorter than a minute", o.ChunkRange)
	case o.Limits.MaxSeries < 0 || o.Limits.MaxBytes < 0:
		return fmt.Errorf("head limits %+v are negative", o.Limits)
	}
	return o.Metadata.Validate()
}
