#!/usr/bin/env bash
# The standard capacity scenario, run by `make bench`: start a fresh
# etcdgate (temporary data directory, free port), write the standard fleet
# to it with `etcdgate bench --scenario standard` (about 1,000,000 series
# of a synthetic etcd fleet, scraped every 15 s, steady for 5 minutes),
# print the Markdown table, stop etcdgate.
#
# usage: bench/run-standard.sh [BINARY [extra etcdgate bench flags...]]
# SCENARIO=10m runs the ten-million-series scenario instead (about
# 10,000,000 series, 4 minutes; the node needs ~5 GiB, the generator ~2);
# add --duration 33m for a run in which the open chunks fill and close.
# The JSON report, SVG chart and etcdgate's log go to $BENCH_OUT
# (default bin/bench/, which git ignores).
set -euo pipefail

bin=${1:-bin/etcdgate}
shift || true
out=${BENCH_OUT:-bin/bench}
mkdir -p "$out"
data=$(mktemp -d -t etcdgate-bench.XXXXXX)

# A port nothing answers on; etcdgate fails fast if it was taken since.
port=
for p in $(shuf -i 20000-60000 -n 100); do
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		port=$p
		break
	fi
done
[ -n "$port" ] || { echo "no free port found" >&2; exit 1; }
url="http://127.0.0.1:$port"

"$bin" serve --listen-address "127.0.0.1:$port" --data-dir "$data" >"$out/etcdgate.log" 2>&1 &
pid=$!
cleanup() {
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -rf "$data"
}
trap cleanup EXIT

for _ in $(seq 1 600); do
	curl -sf "$url/-/ready" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { echo "etcdgate exited; see $out/etcdgate.log" >&2; exit 1; }
	sleep 0.1
done
curl -sf "$url/-/ready" >/dev/null || { echo "etcdgate not ready after 60s" >&2; exit 1; }

scenario=${SCENARIO:-standard}
"$bin" bench --scenario "$scenario" --target "etcdgate=$url" --pid "etcdgate=$pid" \
	--out-json "$out/$scenario.json" --out-svg "$out/$scenario.svg" "$@"
echo "report: $out/$scenario.json, chart: $out/$scenario.svg, etcdgate log: $out/etcdgate.log" >&2
