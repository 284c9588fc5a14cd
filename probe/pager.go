package probe

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Paging bounds how hard a keyspace scan presses on a cluster: pages of at
// most PageSize keys, and a pause after each page so that the scan reads
// no more than BytesPerSecond on average. The reads go to one member and
// are serializable (it answers from its own store, no round to the
// leader), all at the revision of the first page, so the scan sees one
// consistent keyspace while writes go on.
//
// It also bounds what a scan costs etcdgate: a page whose answer exceeds
// the session's max_response_bytes (big values) is asked again at half
// the keys, down to one key, and a scan stops at MaxKeys keys. A scan
// holds one page at a time.
type Paging struct {
	PageSize       int64
	BytesPerSecond int64
	// MaxKeys bounds the keys one scan reads; a larger keyspace fails
	// the run with ErrTooManyKeys rather than report a partial count.
	MaxKeys int64
}

// DefaultPaging reads 500 keys a page, at most 8 MiB a second, at most
// 5 million keys: a 100,000-key cluster of 1 KiB values is read in about
// 13 s.
func DefaultPaging() Paging {
	return Paging{PageSize: 500, BytesPerSecond: 8 << 20, MaxKeys: 5_000_000}
}

// Validate checks the bounds. etcd refuses responses over its gRPC limit,
// so pages stay well under 10,000 keys.
func (p Paging) Validate() error {
	if p.PageSize < 1 || p.PageSize > 10000 {
		return fmt.Errorf("page_size %d: want 1 to 10000", p.PageSize)
	}
	if p.BytesPerSecond < 1024 {
		return fmt.Errorf("bytes_per_second %d: want at least 1024", p.BytesPerSecond)
	}
	if p.MaxKeys < 1 {
		return fmt.Errorf("max_keys %d: want at least 1", p.MaxKeys)
	}
	return nil
}

// scanStats say what a scan read.
type scanStats struct {
	Keys     int64
	Bytes    int64 // keys and values
	Pages    int
	Revision int64
}

// scan calls fn for every key of the keyspace, in key order, reading
// from one member. With keysOnly the values are not sent and fn sees
// them empty. fn must not keep kv: the page it belongs to is dropped.
func (p Paging) scan(ctx context.Context, s *Session, keysOnly bool, fn func(kv *mvccpb.KeyValue)) (scanStats, error) {
	var st scanStats
	start := time.Now()
	var resp *clientv3.GetResponse
	size := p.PageSize
	c, err := s.firstMember(ctx, func(c *clientv3.Client) (err error) {
		resp, size, err = p.fit(ctx, c, "\x00", 0, size, keysOnly)
		return err
	})
	if err != nil {
		return st, fmt.Errorf("read keys (page 1): %w", err)
	}
	st.Revision = resp.Header.Revision
	for {
		st.Pages++
		pageBytes := int64(0)
		for _, kv := range resp.Kvs {
			if kv == nil {
				continue
			}
			if st.Keys >= p.MaxKeys {
				return st, fmt.Errorf("%w (%d) at revision %d", ErrTooManyKeys, p.MaxKeys, st.Revision)
			}
			st.Keys++
			n := int64(len(kv.Key) + len(kv.Value))
			st.Bytes, pageBytes = st.Bytes+n, pageBytes+n
			fn(kv)
		}
		if !resp.More || len(resp.Kvs) == 0 || resp.Kvs[len(resp.Kvs)-1] == nil {
			return st, nil
		}
		key := string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		if 4*pageBytes < int64(s.maxResp) {
			size = min(2*size, p.PageSize) // small values again: grow back
		}
		resp = nil // hold one page at a time
		if err := p.pace(ctx, start, st.Bytes); err != nil {
			return st, err
		}
		if resp, size, err = p.fit(ctx, c, key, st.Revision, size, keysOnly); err != nil {
			return st, fmt.Errorf("read keys from %q (page %d): %w", labelValue([]byte(key)), st.Pages+1, err)
		}
	}
}

// fit reads a page from key on, halving the page while its answer
// exceeds the session's limit, and returns the page size that fit.
func (p Paging) fit(ctx context.Context, c *clientv3.Client, key string, rev, size int64, keysOnly bool) (*clientv3.GetResponse, int64, error) {
	for {
		resp, err := p.page(ctx, c, key, rev, size, keysOnly)
		if err == nil {
			if resp == nil || resp.Header == nil {
				return nil, size, fmt.Errorf("range: %w", ErrNoHeader)
			}
			return resp, size, nil
		}
		if status.Code(err) != codes.ResourceExhausted || ctx.Err() != nil {
			return nil, size, err
		}
		if size == 1 {
			return nil, size, fmt.Errorf("one key's value: %w: %w", ErrResponseTooLarge, err)
		}
		size = max(size/2, 1)
	}
}

// page reads up to size keys from key on, at rev (0: the latest).
func (p Paging) page(ctx context.Context, c *clientv3.Client, key string, rev, size int64, keysOnly bool) (*clientv3.GetResponse, error) {
	opts := []clientv3.OpOption{clientv3.WithFromKey(), clientv3.WithLimit(size), clientv3.WithSerializable(), clientv3.WithRev(rev)}
	if keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	return c.Get(ctx, key, opts...)
}

// pace sleeps until the bytes read so far fit the rate.
func (p Paging) pace(ctx context.Context, start time.Time, bytes int64) error {
	due := time.Duration(float64(bytes) / float64(p.BytesPerSecond) * float64(time.Second))
	wait := due - time.Since(start)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("keyspace scan paced to %d bytes/s did not finish: %w", p.BytesPerSecond, ctx.Err())
	}
}
