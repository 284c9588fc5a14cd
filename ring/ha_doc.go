package ring

// HA-pair dedup
//
// Operators run scrapers in pairs for availability: replica a and b scrape
// the same targets and send the same series, told apart by the replica
// label (ring.ha_dedup.replica_label, __replica__ by default) and grouped
// by the cluster label. HATracker stores one replica per cluster at a
// time; the caller (ingest, before relabeling) asks Accept for each
// series carrying both labels, drops the refused ones (counting them in
// etcdgate_ring_ha_samples_deduped_total) and removes the replica label
// from the accepted ones.
//
// Keys. The election of a cluster is the key <prefix><cluster> (prefix
// /etcdgate/ring/ha/ by default), a JSON record
// {"replica":"a","elected_at":<unix ms>,"last_seen":<unix ms>} of at most
// 2 KiB. Every record a tracker writes is attached to its one lease, of
// TTL max(3 × failover_timeout, 10 s), kept alive by clientv3; there is no
// lease per cluster. A record nobody refreshes for a TTL disappears with
// the lease of the node that wrote it last, so clusters nobody sends any
// more leave etcd on their own. Close does not revoke the lease: other
// nodes re-attach the live records to their leases by refreshing them.
//
// Agreement. Any node may receive either replica, so every change is a
// txn compared on the record's mod revision (CreateRevision = 0 for a new
// cluster): of two nodes electing at once, one put wins and the other
// reads the winner's record in the same txn (its Else branch) and adopts
// it. Every node lists the prefix at one revision (pages of 500, at most
// MaxClusters records; a malformed or oversized one is skipped and
// counted in etcdgate_ring_ha_etcd_errors_total{op="decode"}) and watches
// it from the next revision, so elections of other nodes arrive without a
// txn; a failed watch lists again.
//
// Refresh and failover. All times are receive times on the node's clock
// (opts.Now), never sample timestamps, which the senders control; nodes'
// clocks must agree to well within failover_timeout (a last_seen ahead of
// the reader's clock counts as now). When a node receives the elected
// replica and the record's last_seen is failover_timeout/3 old or more,
// it rewrites last_seen; the others see it by the watch, so the ring
// writes about one record per cluster per failover_timeout/3 (10 s by
// default), whichever node receives the samples. A replica other than the
// elected one is refused until last_seen is failover_timeout +
// failover_timeout/3 old: since last_seen lags the last sample by at most
// the refresh period, the elected replica has then not been seen for at
// least failover_timeout; the next sample of another replica is elected
// (a txn, counted in etcdgate_ring_ha_elected_replica_changes_total by
// the node that wins it). A sample whose timestamp is not newer than the
// old replica's last_seen is its backlog and elects no one, for up to two
// failover periods. A refresh or failover in flight costs the elected
// replica nothing: its samples are accepted without waiting.
//
// Bounds. Cluster and replica values are at most 256 bytes of UTF-8
// (ErrHAValue otherwise, before anything is stored). At most MaxClusters
// (100,000) clusters are followed; a new one past it is refused with
// ErrHATooManyClusters (a 4xx, like the series limit: storing both
// replicas of an unknown cluster would interleave two scrapers' samples
// in one series) and counted in etcdgate_ring_ha_limited_total. New
// clusters are written to etcd at most MaxCreatesPerSecond (1,000) per
// node; past it they are elected locally and written by a later sample.
// Each etcd call of Accept is bounded by TxnTimeout (1 s) and its ctx.
//
// Outage. etcd errors never stop ingestion. After an error Accept makes
// no etcd call for a back-off (250 ms doubling up to failover_timeout/3)
// and decides from what the node knows: the known elected replica stays
// accepted, an unknown cluster elects its first replica locally, and a
// replica unseen for the failover time is replaced locally, all counted in
// etcdgate_ring_ha_local_decisions_total. Such a decision is marked dirty
// and written by the next sample once etcd answers, compared on the mod
// revision it was based on: if another node changed the record meanwhile,
// etcd's record wins. During an outage two nodes may thus elect different
// replicas of one cluster and store both for a while: dedup is given up
// before a sample is. A lease lost to an outage is granted again when
// etcd answers; records under the lost one are rewritten by the next
// sample of each live cluster.
