package tsdb

import (
	"strings"
	"testing"
)

func TestParseMapping(t *testing.T) {
	for _, tc := range []struct {
		line   string
		want   mapping
		isFile bool
	}{
		{"7f12a000-7f12c000 rw-s 00000000 08:01 1234      /data/badger/000007.sst",
			mapping{0x7f12a000, 0x7f12c000, "/data/badger/000007.sst"}, true},
		{"7f12a000-7f12c000 rw-s 00000000 08:01 1234 /my data/badger/000007.sst",
			mapping{0x7f12a000, 0x7f12c000, "/my data/badger/000007.sst"}, true},
		{"c000000000-c004000000 rw-p 00000000 00:00 0 ", mapping{}, false},
		{"c000000000-c004000000 rw-p 00000000 00:00 0", mapping{}, false},
		{"7ffd6b5e5000-7ffd6b606000 rw-p 00000000 00:00 0                          [stack]",
			mapping{0x7ffd6b5e5000, 0x7ffd6b606000, "[stack]"}, true},
	} {
		got, isFile, err := parseMapping(tc.line)
		if err != nil || isFile != tc.isFile || got != tc.want {
			t.Errorf("parseMapping(%q) = %+v, %v, %v; want %+v, %v", tc.line, got, isFile, err, tc.want, tc.isFile)
		}
	}
}

func TestParseMappingMalformed(t *testing.T) {
	for _, line := range []string{
		"",
		"7f12a000-7f12c000 rw-s 00000000 08:01",
		"7f12a000 rw-s 00000000 08:01 1234 /x.sst",
		"7f12g000-7f12c000 rw-s 00000000 08:01 1234 /x.sst",
		"7f12a000-zz rw-s 00000000 08:01 1234 /x.sst",
		"7f12c000-7f12a000 rw-s 00000000 08:01 1234 /x.sst",
		"-7f12c000 rw-s 00000000 08:01 1234 /x.sst",
		"1ffffffffffffffff-2ffffffffffffffff rw-s 0 0 0 /x.sst",
	} {
		if m, _, err := parseMapping(line); err == nil {
			t.Errorf("parseMapping(%q) = %+v, want an error", line, m)
		}
	}
}

func TestTableMappings(t *testing.T) {
	maps := strings.Join([]string{
		"c000000000-c004000000 rw-p 00000000 00:00 0",
		"7f0000000000-7f0000200000 rw-s 00000000 08:01 11 /data/badger/000001.sst",
		"7f0000200000-7f0000400000 rw-s 00000000 08:01 12 /data/badger/000002.sst (deleted)",
		"7f0000400000-7f0000600000 rw-s 00000000 08:01 13 /data/badger/00001.mem",
		"7f0000600000-7f0000800000 rw-s 00000000 08:01 14 /data/badger/sub/000003.sst",
		"7f0000800000-7f0000a00000 rw-s 00000000 08:01 15 /data/badger2/000004.sst",
		"7f0000a00000-7f0000c00000 r--s 00000000 08:01 16 /data/badger/000005.sst",
		"",
	}, "\n")
	got, err := tableMappings(strings.NewReader(maps), "/data/badger", tableSuffix)
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{
		{0x7f0000000000, 0x7f0000200000, "/data/badger/000001.sst"},
		{0x7f0000a00000, 0x7f0000c00000, "/data/badger/000005.sst"},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("tableMappings = %+v, want %+v", got, want)
	}
	if _, err := tableMappings(strings.NewReader("garbage\n"), "/data/badger", tableSuffix); err == nil {
		t.Fatal("tableMappings read a malformed line without an error")
	}
}
