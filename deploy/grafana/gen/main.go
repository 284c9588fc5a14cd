// Command gen writes the dashboards of package grafana as JSON files
// into the directory given as its argument (default: the current one,
// deploy/grafana when run by go generate).
package main

import (
	"fmt"
	"os"

	"github.com/etcdgate/etcdgate/deploy/grafana"
)

func main() {
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := grafana.Write(dir); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
