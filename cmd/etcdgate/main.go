// Command etcdgate is the monitoring gateway for etcd fleets: it receives
// remote write, stores series and answers the Prometheus query API.
//
// Usage:
//
//	etcdgate serve [--config FILE] [--listen-address ADDR] [--data-dir DIR]
//	               [--web.config.file FILE] [--web.enable-lifecycle] [--web.enable-pprof]
//	etcdgate check config [--web.config.file FILE] FILE...
//	etcdgate check web-config FILE...
//	etcdgate check registry FILE...
//	etcdgate check rules FILE...
//	etcdgate slo generate FILE
//	etcdgate bench --target NAME=URL [flags]
//	etcdgate probe --target URLS|CLUSTER --inspection NAME [flags]
//	etcdgate version
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: etcdgate <command> [flags]

commands:
  serve          run the gateway
  check config   validate configuration files without starting anything
  check registry validate cluster registry files
  check rules    validate Prometheus rule files
  check web-config validate web config files (--web.config.file: TLS, basic auth)
  slo generate   print the rules an SLO file generates, as a Prometheus rule file
  bench          measure what remote-write receivers hold (etcdgate bench --help)
  probe          run one etcd inspection once and print its record (etcdgate probe --help)
  version        print version information
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a command line and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stderr)
	case "check":
		return runCheck(args[1:], stdout, stderr)
	case "bench":
		return runBench(args[1:], stdout, stderr)
	case "slo":
		return runSLO(args[1:], stdout, stderr)
	case "probe":
		return runProbe(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, buildInfo().String())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "etcdgate: unknown command %q\n%s", args[0], usage)
	return 2
}
