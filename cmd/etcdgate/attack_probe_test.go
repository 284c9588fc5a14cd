package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"
)

// hostileMember speaks etcd's gRPC API and answers what no real member
// does: every range of keys with one 64 MiB value, statuses without a
// response header, watch events without their key-value (clientv3 would
// dereference them in a goroutine of its own and end the process).
type hostileMember struct {
	pb.UnimplementedKVServer
	pb.UnimplementedMaintenanceServer
	pb.UnimplementedClusterServer
	pb.UnimplementedWatchServer
	huge *pb.RangeResponse
}

func (h *hostileMember) Range(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if len(r.RangeEnd) == 0 { // one key: hot_keys reads the revision to watch from
		return &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: 5, MemberId: 1}}, nil
	}
	return h.huge, nil
}

func (h *hostileMember) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	return &pb.StatusResponse{Version: "3.5.17"}, nil
}

func (h *hostileMember) MemberList(context.Context, *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	return &pb.MemberListResponse{}, nil
}

func (h *hostileMember) Alarm(context.Context, *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	return &pb.AlarmResponse{}, nil
}

func (h *hostileMember) Watch(stream pb.Watch_WatchServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	hdr := &pb.ResponseHeader{Revision: 5, MemberId: 1}
	if err := stream.Send(&pb.WatchResponse{Header: hdr, Created: true}); err != nil {
		return err
	}
	for {
		if err := stream.Send(&pb.WatchResponse{Header: hdr, Events: []*mvccpb.Event{{Type: mvccpb.Event_PUT}}}); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAttackHostileEtcd points the prober of a real etcdgate at a hostile
// etcd member: every inspection fails its record saying why, the node
// stays up and answers, and the 64 MiB answers are refused from their
// length prefix (probe.max_response_bytes, 16 MiB by default) instead of
// being read. ETCDGATE_ATTACK_PROBE_MAX_RESPONSE overrides the bound, to
// see the attack pass it.
func TestAttackHostileEtcd(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	m := &hostileMember{huge: &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: 5, MemberId: 1}, Count: 1, More: true,
		Kvs: []*mvccpb.KeyValue{{Key: []byte("/registry/configmaps/ns/huge"), Value: make([]byte, 64<<20)}}}}
	pb.RegisterKVServer(srv, m)
	pb.RegisterMaintenanceServer(srv, m)
	pb.RegisterClusterServer(srv, m)
	pb.RegisterWatchServer(srv, m)
	t.Cleanup(srv.Stop)

	cfg := filepath.Join(t.TempDir(), "etcdgate.yml")
	maxResp := "16777216"
	if v := os.Getenv("ETCDGATE_ATTACK_PROBE_MAX_RESPONSE"); v != "" {
		maxResp = v
	}
	err = os.WriteFile(cfg, fmt.Appendf(nil, `probe:
  max_response_bytes: %s
  jitter: 0
  max_backoff: 2s
  targets: [{cluster: etcd-hostile, endpoints: ["http://%s"]}]
  inspections:
    consistency: {interval: 1s, timeout: 5s}
    health: {interval: 1s, timeout: 5s}
    big_values: {interval: 1s, timeout: 10s}
    key_count: {interval: 1s, timeout: 10s}
    hot_keys: {interval: 1s, timeout: 5s, window: 1s}
`, maxResp, l.Addr()), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"consistency": "etcd answered without a response header",
		"health":      "etcd answered without a response header",
		"big_values":  "exceeds max_response_bytes",
		"key_count":   "exceeds max_response_bytes",
		"hot_keys":    "watch event without its key-value",
	}
	runAttacks(t, []attack{{
		name: "hostile member",
		args: []string{"--config", cfg},
		send: func(t *testing.T, base string) []int {
			go func() { _ = srv.Serve(l) }() // the member turns hostile now that RSS is measured
			var codes []int
			found := map[string]string{}
			defer func() {
				for in, msg := range found {
					t.Logf("%s: %s", in, msg)
				}
			}()
			waitFor(t, 90*time.Second, "a failed record of every inspection", func() bool {
				resp, err := http.Get(base + "/api/v1/inspections?status=failed")
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				codes = append(codes, resp.StatusCode)
				var env struct {
					Data []struct{ Inspection, Message string }
				}
				if json.NewDecoder(resp.Body).Decode(&env) != nil {
					return false
				}
				for _, r := range env.Data {
					if strings.Contains(r.Message, want[r.Inspection]) {
						found[r.Inspection] = r.Message
					}
				}
				return len(found) == len(want)
			})
			return codes
		},
		allowed:   []int{http.StatusOK},
		within:    2 * time.Minute,
		maxGrowth: 48 << 20,
	}})
}
