package ring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Whole-ring state: /api/v1/rules, /api/v1/alerts, /api/v1/slo and
// /api/v1/inspections on any node show the state of the whole ring. Each
// node serves the part it owns (the rule groups it evaluates, the SLOs it
// computes, the inspections it ran) at one of these internal endpoints,
// role read; the node answering the public endpoint merges its own part
// with those of every other ACTIVE node (Peers.Part).
const (
	RulesPartPath       = "/internal/v1/rules"
	SLOPartPath         = "/internal/v1/slo"
	InspectionsPartPath = "/internal/v1/inspections"
)

// MaxPartBytes bounds one node's part of a whole-ring state answer: read
// up to it, past it the part is an error (the merging node answers with
// the others' parts and a warning), never an unbounded buffer.
const MaxPartBytes = 32 << 20

// Part asks node n for its part of a whole-ring state: GET n.URL+pathQuery
// (a path above, with its query string) with the peers' client and
// credentials, bounded by ctx and the peers' timeout. It returns the data
// field of the node's JSON answer.
func (p *Peers) Part(ctx context.Context, n *Node, pathQuery string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(n.URL, "/")+pathQuery, http.NoBody)
	if err != nil {
		return nil, stripURLError(err)
	}
	req.Header.Set("User-Agent", "etcdgate-ring")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ring: state of %s: %w", n.Name, stripURLError(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxPartBytes+1))
	if err != nil {
		return nil, fmt.Errorf("ring: state of %s: %w", n.Name, err)
	}
	if len(b) > MaxPartBytes {
		return nil, fmt.Errorf("ring: state of %s: answer larger than %d bytes", n.Name, MaxPartBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ring: state of %s: answer %d: %s", n.Name, resp.StatusCode, message(b))
	}
	var r struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("ring: state of %s: %w", n.Name, err)
	}
	return r.Data, nil
}
