package main

import (
	"log/slog"
	"sync"
	"time"

	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/internal/logthrottle"
	"github.com/etcdgate/etcdgate/tsdb"
)

// ingestMetadata is the metadata entry ingest's decoders produce: the
// metric name and its type, help and unit, aliasing the request body.
type ingestMetadata = ingest.Metadata

var _ ingest.MetadataSink = (*metadataSink)(nil)

// metadataSink implements ingest.MetadataSink over the store: the
// metadata of every write request goes to tsdb's metadata store, which
// keeps what is new and writes it through to badger. Unchanged metadata,
// the steady state, allocates nothing here or there.
type metadataSink struct {
	db     *tsdb.DB
	logger *slog.Logger
	logs   *logthrottle.Throttle
	// bufs holds the []tsdb.MetricMetadata a call converts into; the
	// strings are the request's, dropped on Put.
	bufs sync.Pool
}

func newMetadataSink(db *tsdb.DB, logger *slog.Logger) *metadataSink {
	return &metadataSink{db: db, logger: logger, logs: logthrottle.New(time.Minute, 1)}
}

// AddMetadata keeps md's new entries. md aliases the request and is not
// kept. A store that cannot write keeps the metadata in memory and writes
// it at the next change or checkpoint: the write itself does not fail
// for it.
func (s *metadataSink) AddMetadata(md []ingestMetadata) {
	if len(md) == 0 {
		return
	}
	bp, _ := s.bufs.Get().(*[]tsdb.MetricMetadata)
	if bp == nil {
		bp = new([]tsdb.MetricMetadata)
	}
	buf := (*bp)[:0]
	for _, m := range md {
		buf = append(buf, tsdb.MetricMetadata{Metric: m.Metric, Metadata: tsdb.Metadata{Type: m.Type, Help: m.Help, Unit: m.Unit}})
	}
	err := s.db.AddMetadata(buf)
	clear(buf) // no reference to the request stays in the pool
	*bp = buf[:0]
	s.bufs.Put(bp)
	if err != nil {
		if ok, n := s.logs.Allow("persist", time.Now()); ok {
			s.logger.Warn("metric metadata not written to the store; kept in memory and retried", "err", err, "suppressed", n)
		}
	}
}
