package probe

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// memberStatus is one endpoint's answer to Status.
type memberStatus struct {
	Endpoint string
	Resp     *clientv3.StatusResponse // nil when Err is set; else Resp.Header is set
	Latency  time.Duration
	Err      error
}

// statusAll asks every endpoint of the target for its status, in
// parallel, so that one dead member costs the time of one request. A
// member that does not answer within half the time left is given up on,
// so that the inspection still has time for the members that did.
func statusAll(ctx context.Context, s *Session) []memberStatus {
	limit := time.Duration(1<<63 - 1)
	if dl, ok := ctx.Deadline(); ok {
		limit = time.Until(dl) / 2
	}
	sctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	out := make([]memberStatus, len(s.Target.Endpoints))
	var wg sync.WaitGroup
	for i, ep := range s.Target.Endpoints {
		out[i].Endpoint = ep
		wg.Go(func() {
			defer recoverInto(&out[i].Err)
			start := time.Now()
			resp, err := s.Client.Status(sctx, ep)
			if err == nil && (resp == nil || resp.Header == nil) {
				resp, err = nil, ErrNoHeader
			}
			out[i] = memberStatus{Endpoint: ep, Resp: resp, Latency: time.Since(start), Err: err}
			switch {
			case err != nil && sctx.Err() != nil && ctx.Err() == nil:
				out[i].Err = fmt.Errorf("status of %s: no answer within %s", ep, limit.Round(time.Millisecond))
			case err != nil:
				out[i].Err = fmt.Errorf("status of %s: %w", ep, err)
			}
		})
	}
	wg.Wait()
	return out
}

// reachable returns the members that answered, and an error naming every
// one that did not when none did.
func reachable(sts []memberStatus) ([]memberStatus, error) {
	ok, errs := partition(sts, func(st memberStatus) error { return st.Err })
	if len(ok) == 0 {
		return nil, fmt.Errorf("no member answered: %s", strings.Join(errs, "; "))
	}
	return ok, nil
}

// memberID formats a member ID as etcd prints it.
func memberID(id uint64) string { return fmt.Sprintf("%x", id) }

// partition splits items into those without error and the messages of
// the errors of the others.
func partition[T any](items []T, errOf func(T) error) (ok []T, errs []string) {
	for _, it := range items {
		if err := errOf(it); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		ok = append(ok, it)
	}
	return ok, errs
}
