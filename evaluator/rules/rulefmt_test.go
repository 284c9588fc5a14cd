package rules

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseGoodFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yml")
	if len(files) == 0 {
		t.Fatal("no good files")
	}
	for _, f := range files {
		if _, err := ParseFile(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	rf, err := ParseFile("testdata/etcd.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	g := rf.Groups[0]
	if g.Name != "etcd" || g.Limit != 100 || len(g.Rules) != 2 || g.File != "testdata/etcd.good.yml" {
		t.Fatalf("group parsed as %+v", g)
	}
	if r := g.Rules[1]; r.Alert != "EtcdNoLeader" || r.For.String() != "1m" || r.KeepFiringFor.String() != "5m" {
		t.Fatalf("alert parsed as %+v", r)
	}
	if rf.Groups[1].QueryOffset.String() != "1m" {
		t.Fatalf("query_offset parsed as %v", rf.Groups[1].QueryOffset)
	}
}

// TestParseBadFiles checks that each malformed file fails with an error
// naming the file, the line and, where there is one, the group and rule.
func TestParseBadFiles(t *testing.T) {
	f := func(file string, want ...string) {
		t.Helper()
		path := filepath.Join("testdata", file)
		_, err := ParseFile(path)
		if err == nil {
			t.Errorf("%s: no error", file)
			return
		}
		for _, w := range append(want, path) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", file, err, w)
			}
		}
	}
	f("both.bad.yml", `:4: group "g", rule 1 (alert "AB")`, "only one of 'record' and 'alert'")
	f("neither.bad.yml", `:4: group "g", rule 1`, "one of 'record' or 'alert' must be set")
	f("expr.bad.yml", `:6: group "g", rule 2 (alert "Broken"): expr:`)
	f("noexpr.bad.yml", `rule 1 (record "a:b")`, "field 'expr' must be set")
	f("record_name.bad.yml", `invalid recording rule name "bad name"`)
	f("record_for.bad.yml", "must not have a 'for' duration")
	f("record_annotations.bad.yml", "must not have annotations")
	f("label_name.bad.yml", `invalid label name "bad-name"`)
	f("template.bad.yml", `annotation summary:`, "unclosed action")
	f("template_func.bad.yml", `function "query" not defined`)
	f("unknown_key.bad.yml", `line 6: unknown key "annotation"`, `rule 1 (alert "A")`)
	f("group_key.bad.yml", `group "g"`, `unknown key "evaluation_interval"`)
	f("dup_group.bad.yml", `:4: group "g": repeated in the same file`)
	f("noname.bad.yml", "group name must not be empty")
	f("duration.bad.yml", `"5 minutes"`)
	f("syntax.bad.yml", "yaml: line 3")
	f("file_key.bad.yml", `unknown key "group"`)
	f("name_label.bad.yml", "must not set __name__")
	f("negative_limit.bad.yml", "limit must not be negative")
}

func TestParseReportsEveryProblem(t *testing.T) {
	data := "groups:\n- name: a\n  rules:\n  - record: 'x y'\n    expr: up\n  - alert: B\n    expr: 'up =='\n"
	_, errs := Parse("mem.yml", []byte(data))
	if len(errs) != 2 {
		t.Fatalf("got %d errors, want 2: %v", len(errs), errs)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	rf, err := ParseFile("testdata/etcd.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(rf.Groups)
	if err != nil {
		t.Fatal(err)
	}
	back, errs := Parse("out.yml", out)
	if len(errs) > 0 {
		t.Fatalf("marshalled file does not parse: %v\n%s", errs, out)
	}
	if len(back.Groups) != 2 || back.Groups[0].Rules[1].Annotations["summary"] != rf.Groups[0].Rules[1].Annotations["summary"] {
		t.Fatalf("round trip changed the groups:\n%s", out)
	}
}

func TestLoadFilesGlobs(t *testing.T) {
	groups, err := LoadFiles("testdata", []string{"*.good.yml"})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 {
		t.Fatalf("got %d groups", len(groups))
	}
	if _, err := LoadFiles("testdata", []string{"*.bad.yml"}); err == nil {
		t.Fatal("bad files loaded")
	}
	if _, err := LoadFiles("", []string{"[x"}); err == nil {
		t.Fatal("bad glob accepted")
	}
}
