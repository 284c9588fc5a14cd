package bench

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// The labels every series of a member gets from service discovery and
// the scraper's external labels, sorted by name. They are the first
// slots of a member.
var memberLabelNames = [...]string{"cluster", "instance", "job", "namespace", "pod", "region"}

const (
	numMemberLabels = len(memberLabelNames)
	slotSelf        = numMemberLabels     // the member's own ID, as a label value field
	slotPeer0       = numMemberLabels + 1 // peer p's ID is slot slotPeer0+p
	idFieldLen      = 2 + 16              // a label value field holding a 16-hex-digit member ID
)

// part is a piece of a series' encoded labels: literal bytes every member
// shares, or (lit == nil) one of the member's own slots.
type part struct {
	lit  []byte
	slot int
}

// spec is one series of a member: a template, instantiated for one peer
// when it names a peer. Immutable after newLayout.
type spec struct {
	t        *template
	group    int // index into layout.groups, or -1
	parts    []part
	fixedLen int // encoded bytes of the literal parts and the ID slots
}

// layout is what every member of the fleet exposes: built once, shared
// read-only by all senders.
type layout struct {
	ts      *templateSet
	specs   []spec
	groups  []histGroup // histogram groups, one per (template group, peer)
	members int         // members per cluster
}

// newLayout instantiates the templates for clusters of the given size
// and pre-encodes every series' labels, so a scrape only copies bytes.
func newLayout(ts *templateSet, members int) *layout {
	l := &layout{ts: ts, members: members}
	groupOf := map[[2]int]int{}
	for i := range ts.templates {
		t := &ts.templates[i]
		peers := 1
		if t.hasPeer {
			peers = members - 1
		}
		for p := range peers {
			s := spec{t: t, group: -1}
			if t.group >= 0 {
				key := [2]int{t.group, p}
				g, ok := groupOf[key]
				if !ok {
					g = len(l.groups)
					groupOf[key] = g
					l.groups = append(l.groups, ts.groups[t.group])
				}
				s.group = g
			}
			s.parts, s.fixedLen = encodeLabelParts(t, p)
			l.specs = append(l.specs, s)
		}
	}
	return l
}

// labelEntry is one label of a series before encoding.
type labelEntry struct {
	name, value string
	slot        int // -1: literal value
}

// encodeLabelParts encodes the sorted labels of template t for peer p as
// literal runs around the member's slots.
func encodeLabelParts(t *template, p int) (parts []part, fixedLen int) {
	entries := []labelEntry{{name: "__name__", value: t.name, slot: -1}}
	for k, name := range memberLabelNames {
		entries = append(entries, labelEntry{name: name, slot: k})
	}
	for _, tl := range t.labels {
		e := labelEntry{name: tl.name, value: tl.value, slot: -1}
		if slices.Contains(memberLabelNames[:], e.name) {
			// The scraper's labels win; the target's move aside, as
			// Prometheus does without honor_labels.
			e.name = "exported_" + e.name
		}
		switch tl.role {
		case roleSelf:
			e.slot = slotSelf
		case rolePeer:
			e.slot = slotPeer0 + p
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b labelEntry) int { return strings.Compare(a.name, b.name) })
	var lit []byte
	flush := func(slot int) {
		if len(lit) > 0 {
			parts = append(parts, part{lit: lit})
			fixedLen += len(lit)
			lit = nil
		}
		parts = append(parts, part{slot: slot})
	}
	for _, e := range entries {
		switch {
		case e.slot < 0:
			lit = appendLabel(lit, e.name, e.value)
		case e.slot < numMemberLabels:
			flush(e.slot)
		default:
			// The label's name is the same for every member; only the
			// ID in its value field differs.
			lit = append(lit, 0x0a)
			lit = binary.AppendUvarint(lit, uint64(1+uvarintLen(uint64(len(e.name)))+len(e.name)+idFieldLen))
			lit = appendString(lit, 0x0a, e.name)
			flush(e.slot)
			fixedLen += idFieldLen
		}
	}
	if len(lit) > 0 {
		parts = append(parts, part{lit: lit})
		fixedLen += len(lit)
	}
	return parts, fixedLen
}

// seriesPerMember is the number of series one member writes per scrape.
func (l *layout) seriesPerMember() int { return len(l.specs) }

// cluster is one synthetic etcd cluster. Immutable after creation.
type cluster struct {
	id      int
	name    string
	region  string
	seed    uint64
	members []*member
}

// member is one etcd member of the fleet. Its slots are immutable after
// creation; the rest belongs to the sender goroutine that owns it.
type member struct {
	cluster   *cluster
	index     int
	slots     [][]byte // encoded member labels, own ID and peer IDs
	labelsLen int      // bytes of the member label slots
	offset    time.Duration
	scale     float64 // sets this member's rates and sizes apart from its peers
	seed      uint64
	values    []float64 // one per layout spec
	leader    int       // the member the cluster follows, as this member saw it
	rounds    uint64    // scrapes so far
	lastTS    int64     // timestamp of the last scrape, ms
	stale     bool      // removed: its next scrape writes stale markers
}

// newCluster builds a cluster's members with their start values. The
// scrape offset of each member within the interval is derived from its
// name, as Prometheus spreads its scrapes.
func newCluster(l *layout, o *FleetOptions, id int, interval time.Duration) *cluster {
	region := o.Regions[id%len(o.Regions)]
	c := &cluster{id: id, region: region, name: fmt.Sprintf("etcd-%s-%05d", region, id), seed: splitmix(o.Seed ^ uint64(id)<<20)}
	ids := make([][]byte, l.members)
	for i := range ids {
		ids[i] = appendString(nil, 0x12, fmt.Sprintf("%016x", splitmix(c.seed+uint64(i))))
	}
	leader := int(c.seed % uint64(l.members))
	for i := range l.members {
		m := &member{cluster: c, index: i, seed: splitmix(c.seed ^ uint64(i+1)), leader: leader}
		node := fmt.Sprintf("%s-cp-%d", c.name, i)
		h := splitmix(m.seed)
		values := [numMemberLabels]string{
			c.name,
			fmt.Sprintf("10.%d.%d.%d:2379", h>>8&0xff, h>>16&0xff, h>>24&0xff|1),
			"etcd",
			"kube-system",
			"etcd-" + node,
			region,
		}
		for k, name := range memberLabelNames {
			m.slots = append(m.slots, appendLabel(nil, name, values[k]))
			m.labelsLen += len(m.slots[k])
		}
		m.slots = append(m.slots, ids[i])
		for p := range ids {
			if p != i {
				m.slots = append(m.slots, ids[p])
			}
		}
		if interval > 0 {
			m.offset = time.Duration(h % uint64(interval))
		}
		m.scale = 0.5 + float64(h>>40)/(1<<24)
		m.values = startValues(l, m)
		c.members = append(c.members, m)
	}
	return c
}

// startValues scales the captured values by the member's scale, keeping
// counts whole and histogram buckets cumulative.
func startValues(l *layout, m *member) []float64 {
	values := make([]float64, len(l.specs))
	for i := range l.specs {
		t := l.specs[i].t
		v := t.value
		switch t.kind {
		case kindConst, kindLeaderChanges:
		case kindIsLeader:
			v = 0
			if m.index == m.leader {
				v = 1
			}
		default:
			v *= m.scale
		}
		if t.integral {
			v = math.Round(v)
		}
		values[i] = v
	}
	return values
}
