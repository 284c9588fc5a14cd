package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/etcdgate/etcdgate/tsdb"
)

func (a *API) buildInfo(w http.ResponseWriter, _ *http.Request) {
	respond(w, a.opts.BuildInfo, nil)
}

// tsdbStatus is the data of /api/v1/status/tsdb, shaped as Prometheus's.
type tsdbStatus struct {
	HeadStats                   headStats `json:"headStats"`
	SeriesCountByMetricName     []stat    `json:"seriesCountByMetricName"`
	LabelValueCountByLabelName  []stat    `json:"labelValueCountByLabelName"`
	MemoryInBytesByLabelName    []stat    `json:"memoryInBytesByLabelName"`
	SeriesCountByLabelValuePair []stat    `json:"seriesCountByLabelValuePair"`
}

type headStats struct {
	NumSeries     int64 `json:"numSeries"`
	NumLabelPairs int   `json:"numLabelPairs"`
	ChunkCount    int64 `json:"chunkCount"`
	MinTime       int64 `json:"minTime"`
	MaxTime       int64 `json:"maxTime"`
}

type stat struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

func toStats(in []tsdb.Stat) []stat {
	out := make([]stat, len(in))
	for i, s := range in {
		out[i] = stat{Name: s.Name, Value: s.Value}
	}
	return out
}

// tsdbStatus serves /api/v1/status/tsdb with the top limit (default 10)
// entries of each cardinality list.
func (a *API) tsdbStatus(w http.ResponseWriter, r *http.Request) {
	limit := 10
	if s := r.FormValue("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			respondError(w, badData(errors.New("limit must be a positive number not exceeding 10000")))
			return
		}
		limit = n
	}
	b := a.readyBackend(w, true)
	if b == nil {
		return
	}
	ctx, _, release := a.startListing(w, r)
	if release == nil {
		return
	}
	// Stats cannot be interrupted: it runs in a goroutine that keeps the
	// listing slot until it ends, and the client gets 503 at the timeout.
	// release also cancels ctx, so a finished result must win over a
	// done context: the goroutine may have sent and cancelled before this
	// select looks at either.
	done := make(chan tsdb.Stats, 1)
	go func() {
		defer release()
		done <- b.storage.Stats(limit)
	}()
	var st tsdb.Stats
	select {
	case st = <-done:
	case <-ctx.Done():
		select {
		case st = <-done:
		default:
			respondError(w, readError(ctx.Err()))
			return
		}
	}
	respond(w, tsdbStatus{
		HeadStats: headStats{
			NumSeries:     st.NumSeries,
			NumLabelPairs: st.NumLabelPairs,
			ChunkCount:    st.NumChunks,
			MinTime:       st.MinTime,
			MaxTime:       st.MaxTime,
		},
		SeriesCountByMetricName:     toStats(st.SeriesCountByMetricName),
		LabelValueCountByLabelName:  toStats(st.LabelValueCountByLabelName),
		MemoryInBytesByLabelName:    toStats(st.MemoryInBytesByLabelName),
		SeriesCountByLabelValuePair: toStats(st.SeriesCountByLabelValuePair),
	}, a.tsdbStatusWarnings())
}

// tsdbStatusLocalWarning says, on a node of a ring, that the cardinality
// figures are this node's own: the ring's would count each series once
// per replica, or need a merge of every node's top lists that cannot be
// exact.
const tsdbStatusLocalWarning = "this node's store only: in a ring each node holds about replication_factor/nodes of the series; /api/v1/status/ring has every node's head series"

func (a *API) tsdbStatusWarnings() []string {
	if a.ringReads.Load() != nil {
		return []string{tsdbStatusLocalWarning}
	}
	return nil
}
