package main

import (
	"fmt"
	"io"
)

// runCheck validates files without starting anything, like promtool.
func runCheck(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 || args[0] != "config" {
		fmt.Fprintln(stderr, "usage: etcdgate check config FILE...")
		return 2
	}
	code := 0
	for _, path := range args[1:] {
		if _, err := LoadConfig(path); err != nil {
			fmt.Fprintf(stderr, "FAILED: %v\n", err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "SUCCESS: %s is valid etcdgate config\n", path)
	}
	return code
}
