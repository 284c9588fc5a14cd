package probe

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// putKeys writes n small keys named prefix + index, 100 to a transaction.
func putKeys(t *testing.T, kv *clientv3.Client, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i += 100 {
		var ops []clientv3.Op
		for j := i; j < min(i+100, n); j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s%06d", prefix, j), "v"))
		}
		if _, err := kv.Txn(context.Background()).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKeyCountGrowth grows a prefix by 10,000 keys between two runs and
// checks the count and the growth, both with Kubernetes grouping (a
// keys-only scan) and with a configured prefix (count-only requests).
func TestKeyCountGrowth(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 3})
	kv := c.Client(t)
	putKeys(t, kv, "/registry/services/specs/default/s", 12)
	putKeys(t, kv, "/other/x", 3)
	c.WaitConverged(t)
	tg := testTarget("etcd-grow", c)
	grouped := DefaultKeyCount()
	configured := KeyCount{Prefixes: []string{"/registry/pods/", "/registry/"}, MaxPrefixes: 10, Paging: DefaultPaging()}

	rec, groupedPrev, _ := inspect(t, tg, grouped, 30*time.Second, nil)
	wantRecord(t, rec, StatusSuccess, "total key num is 15", "/registry/services/ 12", "/other/ 3")
	_, configuredPrev, _ := inspect(t, tg, configured, 30*time.Second, nil)

	putKeys(t, kv, "/registry/pods/default/p", 10000)
	c.WaitConverged(t)

	rec, _, col := inspect(t, tg, grouped, 30*time.Second, groupedPrev)
	wantRecord(t, rec, StatusSuccess, "total key num is 10015 (+10000 in", "/registry/pods/ 10000 (+10000,")
	wantValue(t, col, 10000, "etcdgate_inspection_prefix_keys", "prefix", "/registry/pods/", "cluster", "etcd-grow", "inspection", "key_count")
	wantValue(t, col, 10000, "etcdgate_inspection_prefix_keys_growth", "prefix", "/registry/pods/")
	wantValue(t, col, 0, "etcdgate_inspection_prefix_keys_growth", "prefix", "/registry/services/")
	if v, _ := col.value("etcdgate_inspection_prefix_keys_growth_per_second", "prefix", "/registry/pods/"); v <= 0 {
		t.Fatalf("growth rate %v", v)
	}

	rec, _, col = inspect(t, tg, configured, 30*time.Second, configuredPrev)
	wantRecord(t, rec, StatusSuccess, "/registry/pods/ 10000 (+10000,", "/registry/ 10012 (+10000,")
	wantValue(t, col, 10015, "etcdgate_inspection_keys")
	wantValue(t, col, 10000, "etcdgate_inspection_prefix_keys_growth", "prefix", "/registry/pods/")
}

func TestPrefixGrouper(t *testing.T) {
	g := newPrefixGrouper(nil)
	for key, want := range map[string]string{
		"/registry/pods/ns/a":                   "/registry/pods/",
		"/registry/apiextensions.k8s.io/crds/x": "/registry/apiextensions.k8s.io/",
		"/registry/ranges":                      "/registry/",
		"/app/config":                           "/app/",
		"plain":                                 otherPrefix,
		"/\xff\xfe/x":                           "/\uFFFD/",
		"/registry/" + string(make([]byte, 300)) + "/": "/registry/" + string(make([]byte, 246)) + "…",
	} {
		if got := g.group([]byte(key)); got != want {
			t.Errorf("group(%q) = %q, want %q", key, got, want)
		}
	}
	g = newPrefixGrouper([]string{"/a/", "/a/b/"})
	if g.group([]byte("/a/b/c")) != "/a/b/" || g.group([]byte("/a/c")) != "/a/" || g.group([]byte("/c")) != otherPrefix {
		t.Fatal("configured prefixes: longest match first")
	}
}

func TestKeyCountCap(t *testing.T) {
	k := KeyCount{MaxPrefixes: 2}
	got := k.cap(map[string]int64{"/a/": 5, "/b/": 4, "/c/": 3, otherPrefix: 1, "/d/": 1})
	if len(got) != 3 || got["/a/"] != 5 || got["/b/"] != 4 || got[otherPrefix] != 5 {
		t.Fatalf("capped %v", got)
	}
}
