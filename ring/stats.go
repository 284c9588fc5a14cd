package ring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// StatsPath is the endpoint where a node tells its peers about itself.
const StatsPath = "/internal/v1/stats"

// NodeStats is what a node tells its peers about itself.
type NodeStats struct {
	HeadSeries int64 `json:"head_series"`
}

// maxStatsBytes bounds a peer's stats answer.
const maxStatsBytes = 64 << 10

// Stats asks node n for its stats (GET n.URL+StatsPath), bounded by ctx
// and the forward timeout, with the peers' client (and credentials).
func (p *Peers) Stats(ctx context.Context, n *Node) (NodeStats, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(n.URL, "/")+StatsPath, http.NoBody)
	if err != nil {
		return NodeStats{}, stripURLError(err)
	}
	req.Header.Set("User-Agent", "etcdgate-ring")
	resp, err := p.client.Do(req)
	if err != nil {
		return NodeStats{}, fmt.Errorf("ring: stats of %s: %w", n.Name, stripURLError(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxStatsBytes))
	if err != nil {
		return NodeStats{}, fmt.Errorf("ring: stats of %s: %w", n.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return NodeStats{}, fmt.Errorf("ring: stats of %s: answer %d: %s", n.Name, resp.StatusCode, message(b))
	}
	var r struct {
		Data NodeStats `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return NodeStats{}, fmt.Errorf("ring: stats of %s: %w", n.Name, err)
	}
	return r.Data, nil
}
