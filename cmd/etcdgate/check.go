package main

import (
	"fmt"
	"io"

	"github.com/etcdgate/etcdgate/relabel"
)

// runCheck validates files without starting anything, like promtool.
func runCheck(args []string, stdout, stderr io.Writer) int {
	if len(args) >= 2 && args[0] == "rules" {
		return runCheckRules(args[1:], stdout, stderr) // rules_cmd.go
	}
	if len(args) >= 2 && args[0] == "web-config" {
		return runCheckWebConfig(args[1:], stdout, stderr) // serve_auth.go
	}
	webConfigFile := ""
	if len(args) >= 4 && args[0] == "config" && args[1] == "--web.config.file" {
		// Also check web.authorization against the users of that file.
		webConfigFile, args = args[2], append([]string{"config"}, args[3:]...)
	}
	if len(args) < 2 || args[0] != "config" && args[0] != "registry" {
		fmt.Fprintln(stderr, "usage: etcdgate check config [--web.config.file FILE] FILE... | etcdgate check registry FILE... | etcdgate check rules FILE... | etcdgate check web-config FILE...")
		return 2
	}
	load, what := func(p string) error {
		cfg, err := LoadConfig(p)
		if err == nil && webConfigFile != "" {
			_, err = newAuthPolicy(webConfigFile, cfg)
		}
		return err
	}, "valid etcdgate config"
	if args[0] == "registry" {
		load, what = func(p string) error { _, err := relabel.LoadRegistryFile(p); return err }, "valid cluster registry"
	}
	code := 0
	for _, path := range args[1:] {
		if err := load(path); err != nil {
			fmt.Fprintf(stderr, "FAILED: %v\n", err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "SUCCESS: %s is %s\n", path, what)
	}
	return code
}
