// Package deploy holds what runs etcdgate outside this repository:
// Kubernetes manifests (kubernetes/), a systemd unit (systemd/), an
// example configuration and registry, and the default rule pack
// (rules/). Its tests decode every manifest strictly into the Kubernetes
// API types and check the scrapers' configuration with promtool, so a
// typo fails CI rather than a rollout.
package deploy
