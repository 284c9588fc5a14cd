package probe

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Session is a connection to one target for one inspection run. It
// counts the requests it sends and the bytes it receives, so records and
// metrics say what load an inspection puts on a cluster.
type Session struct {
	Target Target
	// Client balances over every endpoint; use it for requests any
	// member may answer. Member gives a client of one member.
	Client *clientv3.Client

	cfg      clientv3.Config
	maxResp  int // immutable: the largest answer accepted, in bytes
	requests atomic.Int64
	bytes    atomic.Int64
	largest  atomic.Int64 // the largest answer received, in bytes

	mu      sync.Mutex                  // guards members
	members map[string]*clientv3.Client // per-endpoint clients, made on demand
}

// dialTimeout bounds connection setup; the inspection's own timeout
// bounds the whole run.
const dialTimeout = 5 * time.Second

// Dial connects to the target. Connections are made lazily by gRPC, so an
// unreachable cluster shows at the first request, bounded by its context.
// No answer over maxResponseBytes (0: DefaultMaxResponseBytes) is
// received: gRPC refuses it from its length prefix, before allocating.
func Dial(t Target, maxResponseBytes int) (*Session, error) {
	tc, err := t.TLS.Load()
	if err != nil {
		return nil, err
	}
	if maxResponseBytes <= 0 {
		maxResponseBytes = DefaultMaxResponseBytes
	}
	s := &Session{Target: t, maxResp: maxResponseBytes, members: map[string]*clientv3.Client{}}
	s.cfg = clientv3.Config{
		Endpoints:          t.Endpoints,
		DialTimeout:        dialTimeout,
		TLS:                tc,
		Logger:             zap.NewNop(),
		MaxCallRecvMsgSize: maxResponseBytes,
		// The client otherwise retries an unavailable endpoint until the
		// context ends; an inspection wants the first error, clearly.
		MaxUnaryRetries: 1,
		DialOptions: []grpc.DialOption{
			grpc.WithChainUnaryInterceptor(s.countUnary),
			grpc.WithChainStreamInterceptor(s.countStream),
		},
	}
	s.Client, err = clientv3.New(s.cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %v: %w", t.Endpoints, err)
	}
	return s, nil
}

// Member returns a client of the member at endpoint alone, for requests
// whose answer must come from that member (serializable reads of its own
// store).
func (s *Session) Member(endpoint string) (*clientv3.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.members[endpoint]; c != nil {
		return c, nil
	}
	cfg := s.cfg
	cfg.Endpoints = []string{endpoint}
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	s.members[endpoint] = c
	return c, nil
}

// firstMember calls fn with a client of each member in turn until one
// answers, and returns that client: reads that follow at the revision it
// answered at must go to the same member, as another may not have
// applied that revision yet.
func (s *Session) firstMember(ctx context.Context, fn func(*clientv3.Client) error) (*clientv3.Client, error) {
	var errs []string
	for _, ep := range s.Target.Endpoints {
		c, err := s.Member(ep)
		if err == nil {
			err = fn(c)
		}
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", ep, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("no member answered: %s", strings.Join(errs, "; "))
}

// Close closes every connection of the session.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.members {
		c.Close()
	}
	s.Client.Close()
}

// Load returns the requests sent and the bytes received so far.
func (s *Session) Load() (requests, bytes int64) { return s.requests.Load(), s.bytes.Load() }

// Largest returns the size of the largest answer received so far.
func (s *Session) Largest() int64 { return s.largest.Load() }

func (s *Session) countUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	// clientv3 makes every call wait for a ready connection, so a dead
	// member costs the whole timeout and hides why; failing fast turns
	// it into "connection refused" at once. The client's own retry
	// interceptor still tries another endpoint.
	err := invoker(ctx, method, req, reply, cc, append(opts, grpc.WaitForReady(false))...)
	s.requests.Add(1)
	if err == nil {
		s.received(reply)
		err = checkHeader(method, reply)
	}
	return err
}

// received counts the bytes of an answer.
func (s *Session) received(m any) {
	pm, ok := m.(proto.Message)
	if !ok {
		return
	}
	n := int64(proto.Size(pm))
	s.bytes.Add(n)
	for {
		l := s.largest.Load()
		if n <= l || s.largest.CompareAndSwap(l, n) {
			return
		}
	}
}

// checkHeader refuses an answer without its response header, as a buggy
// member, a fake or a proxy may send: every etcd answer has one, and the
// inspections read revisions and member IDs from it.
func checkHeader(method string, reply any) error {
	if h, ok := reply.(interface{ GetHeader() *pb.ResponseHeader }); ok && h.GetHeader() == nil {
		return fmt.Errorf("%s: %w", method, ErrNoHeader)
	}
	return nil
}

func (s *Session) countStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	s.requests.Add(1)
	if err != nil {
		return nil, err
	}
	return &countedStream{ClientStream: cs, s: s}, nil
}

// countedStream counts the bytes of every message a stream (a watch)
// receives.
type countedStream struct {
	grpc.ClientStream
	s *Session
}

func (c *countedStream) RecvMsg(m any) error {
	err := c.ClientStream.RecvMsg(m)
	if err == nil {
		c.s.received(m)
		err = checkWatch(m)
	}
	return err
}

// checkWatch refuses a watch answer the client cannot take: clientv3
// reads every event's key-value in its own goroutine, where a nil one
// would end the process. The error's code ends the watch (clientv3
// retries only Unavailable and Internal), so the inspection fails.
func checkWatch(m any) error {
	wr, ok := m.(*pb.WatchResponse)
	if !ok {
		return nil
	}
	if wr.Header == nil {
		return status.Error(codes.DataLoss, "watch: "+ErrNoHeader.Error())
	}
	for _, ev := range wr.Events {
		if ev == nil || ev.Kv == nil {
			return status.Error(codes.DataLoss, "watch: "+ErrNoKeyValue.Error())
		}
	}
	return nil
}
