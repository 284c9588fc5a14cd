package main

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/etcdgate/etcdgate/api"
)

// Set by the Makefile through -ldflags: version is `git describe --tags`
// of the build (v0.3.0, or v0.3.0-5-gabc1234 five commits after it,
// -dirty with uncommitted changes), "dev" when there is no tag.
var (
	version   = "dev"
	revision  = ""
	branch    = ""
	buildUser = ""
	buildDate = ""
)

type info api.BuildInfo

func (i info) String() string {
	return fmt.Sprintf("etcdgate, version %s (branch: %s, revision: %s)\n  build user: %s\n  build date: %s\n  go version: %s",
		i.Version, i.Branch, i.Revision, i.BuildUser, i.BuildDate, i.GoVersion)
}

// buildInfo describes this binary; without a revision from the Makefile,
// it takes the VCS stamp the go command embeds, if any.
func buildInfo() info {
	bi := info{Version: semVersion(version), Revision: revision, Branch: branch, BuildUser: buildUser, BuildDate: buildDate, GoVersion: runtime.Version()}
	if b, ok := debug.ReadBuildInfo(); ok && bi.Revision == "" {
		for _, s := range b.Settings {
			if s.Key == "vcs.revision" {
				bi.Revision = s.Value
			}
		}
	}
	return bi
}

// semverRE is a semantic version 2.0.0 without the leading v: major,
// minor and patch without leading zeros, then an optional pre-release
// (dot-separated identifiers, numeric ones without leading zeros) and
// build metadata.
var semverRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
	`(-(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?` +
	`(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$`)

// semVersion turns the build's version into the semantic version
// buildinfo reports, written as Prometheus writes its own (2.45.0, no
// v), which Grafana's version detection parses: a tag v0.3.0 is 0.3.0,
// v0.3.0-5-gabc1234 is 0.3.0-5-gabc1234. A build without a tag (dev, a
// bare commit hash) is 0.0.0-dev; its commit is in the revision field.
func semVersion(v string) string {
	if s := strings.TrimPrefix(v, "v"); semverRE.MatchString(s) {
		return s
	}
	return "0.0.0-dev"
}
