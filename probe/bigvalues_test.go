package probe

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/etcdgate/etcdgate/internal/etcdtest"
)

// TestBigValues plants a 300 KiB value among small ones and checks that
// it is reported, by key and size, with the target's labels, while a
// 50 KiB value stays under the default threshold.
func TestBigValues(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 3})
	kv := c.Client(t)
	ctx := context.Background()
	for i := range 1200 {
		if _, err := kv.Put(ctx, fmt.Sprintf("/registry/pods/ns/p%04d", i), "small"); err != nil {
			t.Fatal(err)
		}
	}
	const big = "/registry/configmaps/ns/huge"
	if _, err := kv.Put(ctx, big, strings.Repeat("x", 300<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "/registry/secrets/ns/medium", strings.Repeat("y", 50<<10)); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(t)
	b := DefaultBigValues()
	b.Paging.PageSize = 100 // several pages, and a page holding the big value
	rec, _, col := inspect(t, testTarget("etcd-big", c), b, 30*time.Second, nil)
	wantRecord(t, rec, StatusWarning, "1 of 1202 keys", big+" 307200 bytes")
	wantValue(t, col, 307200, "etcdgate_inspection_big_value_bytes", "key", big, "prefix", "/registry/configmaps/",
		"cluster", "etcd-big", "product", "payments", "scenario", "business", "size", "large", "region", "eu-west",
		"inspection", "big_values")
	wantValue(t, col, 1, "etcdgate_inspection_big_values", "prefix", "/registry/configmaps/")
	wantValue(t, col, 1, "etcdgate_inspection_success")
	if _, ok := col.value("etcdgate_inspection_big_value_bytes", "key", "/registry/secrets/ns/medium"); ok {
		t.Fatal("a 50 KiB value was reported as big")
	}
}

func TestInsertTop(t *testing.T) {
	var top []bigValue
	for _, size := range []int{5, 9, 1, 7, 9, 3} {
		top = insertTop(top, bigValue{size: size}, 3)
	}
	if len(top) != 3 || top[0].size != 9 || top[1].size != 9 || top[2].size != 7 {
		t.Fatalf("top %v", top)
	}
}
