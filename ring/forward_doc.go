package ring

// Forwarding and write quorum
//
// A node that receives a write appends its own share locally and sends
// every other owner its share as one snappy remote-write 1.0 body, POSTed
// to PushPath (Peers.Forward). The peer appends it and never forwards it
// again.
//
// Bounds of the forward path, all per peer and applied before any work:
//   - in flight: at most MaxInflightRequests requests (default 64) and
//     MaxInflightBytes of compressed bodies (default 64 MiB). At the bound
//     Forward does not queue: it fails at once with ErrPeerOverloaded. A
//     slow or dead peer therefore holds at most that much of this node's
//     memory, and writes of series it does not own never wait for it. A
//     body larger than the byte bound is sent only when nothing else is in
//     flight to that peer;
//   - time: each request, answer included, ends after Timeout (default
//     5 s) or when the caller's context ends;
//   - answer: at most 64 KiB of it is read, at most 1 KiB is kept in the
//     error;
//   - the body: Forward lends it to the HTTP transport through a guard it
//     closes before returning, so the caller may reuse the buffer at once;
//   - metrics and logs: a series per peer (etcdgate_ring_forward_*), dropped
//     by Retain when the peer leaves the ring; at most one log line per peer
//     per 10 s, naming the peer by node name and password-redacted URL.
//
// Answers: 2xx is success. 429 and 503 are overload (ErrPeerOverloaded),
// as is the in-flight bound. 400 is a *PeerRefusal: the peer stored the
// valid samples and refused the others (invalid, out of bounds), which is
// the sender's fault, not a failed replica. Any other answer — 401 or 403
// (the peer_client's credentials), 413, 5xx, redirects — timeouts and
// connection errors are failures: the peer stored nothing, and a node
// with a wrong credential must not count as a replica.
//
// Quorum: every series must reach Quorum(rf) = rf/2+1 of its owners (2 of
// 3). An owner reaches a series when it answers 2xx or refuses (a refusal
// is the same answer any replica would give); this node's own append counts
// as one owner. A Replication per request tracks it: Expect for each series
// placed (before any answer is recorded), Done for each owner's answer with
// the series it was sent, then Wait. Wait returns as soon as the outcome is
// known: success once every series has its quorum, without waiting for the
// slowest owner; failure once any series has more failed owners than
// owners - quorum, or had fewer owners than its quorum to begin with (too
// few ACTIVE nodes, ErrTooFewOwners). The caller answers 2xx on success
// (400 when Refusal is set, as for a local refusal), 503 with Retry-After
// when the failure wraps ErrPeerOverloaded, 5xx otherwise. What was stored
// stays stored: a retry is idempotent, the same sample is a no-op.
//
// Since success does not wait for the slowest owner, the caller should let
// forwards still in flight finish on their own Timeout (a context detached
// from the sender's request) so that the last replica gets the data too;
// the in-flight bounds keep what they hold bounded.
