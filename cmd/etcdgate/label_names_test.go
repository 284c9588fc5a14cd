package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator"
	"github.com/etcdgate/etcdgate/ingest"
	"github.com/etcdgate/etcdgate/tsdb"
)

// TestOneLabelNameRule: every name the engine can make (label_replace,
// label_join, count_values) is one ingest accepts, and the other way
// round, so a recording rule cannot produce a series its node refuses.
// Before there was one rule, the engine made "a.b" and "é" (UTF-8 names)
// that ingest then refused.
func TestOneLabelNameRule(t *testing.T) {
	head, err := tsdb.NewHead(tsdb.DefaultHeadOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	app := head.Appender()
	if err := app.Append(labels.FromStrings("__name__", "up", "job", "etcd"), 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	e := evaluator.NewEngine(head, evaluator.Options{})
	for _, name := range []string{"ok_name", "_x", "A9", "a.b", "é", "1a", "a-b", "a:b", "a b", ""} {
		valid := ingest.IsValidLabelName(name)
		for _, q := range []string{
			fmt.Sprintf(`label_replace(up, %q, "v", "", "")`, name),
			fmt.Sprintf(`label_join(up, %q, ",", "job")`, name),
			fmt.Sprintf(`count_values(%q, up)`, name),
		} {
			_, err := e.Instant(context.Background(), q, time.UnixMilli(0))
			if (err == nil) != valid {
				t.Errorf("%s: engine error %v, but ingest says valid=%v", q, err, valid)
			}
		}
	}
}
