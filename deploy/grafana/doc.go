// Package grafana holds etcdgate's Grafana dashboards as code, built with
// the Grafana Foundation SDK's typed builders: L1 fleet, L2 scenario, L3
// cluster and troubleshooting. The JSON files beside this file are
// generated from it; regenerate them with
//
//	go generate ./deploy/grafana/
//
// and the package's test fails when they differ from the code.
package grafana

//go:generate go run ./gen
