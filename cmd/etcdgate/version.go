package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/etcdgate/etcdgate/api"
)

// Set by the Makefile through -ldflags.
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
	bi := info{Version: version, Revision: revision, Branch: branch, BuildUser: buildUser, BuildDate: buildDate, GoVersion: runtime.Version()}
	if b, ok := debug.ReadBuildInfo(); ok && bi.Revision == "" {
		for _, s := range b.Settings {
			if s.Key == "vcs.revision" {
				bi.Revision = s.Value
			}
		}
	}
	return bi
}
