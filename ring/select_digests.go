package ring

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/etcdgate/etcdgate/tsdb"
)

// A select in mode digests (SelectDigests) answers, for every matching
// series, its SeriesKey and a digest of what it holds in the range
// (keyHasher.digest), in digest frames:
//
//	digests = kind 'd': (key:8 bytes LE  digest:8 bytes LE)*
//
// at most digestsPerFrame pairs to a frame. Each pair counts as one
// series against the answer's series limit.
const frameDigests = 'd'

// digestsPerFrame bounds the pairs of one digest frame (64 KiB).
const digestsPerFrame = 4096

// SeriesDigest is one series of a digests answer.
type SeriesDigest struct {
	Key, Digest uint64
}

func appendDigestFrame(dst []byte, ds []SeriesDigest) []byte {
	dst, lenAt := beginFrame(dst, frameDigests)
	for _, d := range ds {
		dst = binary.LittleEndian.AppendUint64(dst, d.Key)
		dst = binary.LittleEndian.AppendUint64(dst, d.Digest)
	}
	return endFrame(dst, lenAt)
}

// decodeDigests appends the pairs of a digest frame's payload to dst.
func decodeDigests(b []byte, dst []SeriesDigest) ([]SeriesDigest, error) {
	if len(b)%16 != 0 || len(b) == 0 {
		return dst, fmt.Errorf("%w: digest frame of %d bytes, not a positive multiple of 16", ErrBadSelectStream, len(b))
	}
	for ; len(b) > 0; b = b[16:] {
		dst = append(dst, SeriesDigest{Key: binary.LittleEndian.Uint64(b), Digest: binary.LittleEndian.Uint64(b[8:])})
	}
	return dst, nil
}

// selectDigests answers a digests select: every series of set whose key
// is in keys (all when keys is nil), with its digest over [mint, maxt].
func selectDigests(set tsdb.SeriesSet, keys keySet, mint, maxt int64, sink selectSink) error {
	var k keyHasher
	for set.Next() {
		s := set.At()
		key := k.key(s)
		if keys != nil && !keys.has(key) {
			continue
		}
		d, err := k.digest(s, mint, maxt)
		if err != nil {
			return err
		}
		if err := sink.digest(SeriesDigest{Key: key, Digest: d}); err != nil {
			return err
		}
	}
	return set.Err()
}

// EncodeKeys writes series keys as the select and aggregate endpoints
// take them: 8 bytes each, little-endian, in unpadded URL-safe base64.
func EncodeKeys(keys []uint64) string {
	b := make([]byte, 0, 8*len(keys))
	for _, k := range keys {
		b = binary.LittleEndian.AppendUint64(b, k)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeKeys reads EncodeKeys's form, refusing more than max keys before
// it allocates them.
func DecodeKeys(s string, max int) ([]uint64, error) {
	if n := base64.RawURLEncoding.DecodedLen(len(s)); n/8 > max {
		return nil, fmt.Errorf("more than %d series keys", max)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("series keys: %w", err)
	}
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("series keys: %d bytes, not a multiple of 8", len(b))
	}
	keys := make([]uint64, len(b)/8)
	for i := range keys {
		keys[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return keys, nil
}
