#!/usr/bin/env bash
# bridge.sh: throughput bench of the OVS br-phy side-car attachment
# (internal/datapath/ovsbridge). Two hosts in network namespaces obrt-a and
# obrt-b (underlay 198.51.100.0/24, overlay 203.0.113.0/24), each with its
# own ovsdb-server and ovs-vswitchd (userspace datapath); iperf3 TCP over
# the Geneve overlay in two modes:
#   (a) baseline: no policies, br-phy forwards tunnel packets with NORMAL
#   (b) steering without encrypting: Passthrough hook in the engine loop
# (c), ESP, comes with internal/esp.
#
# Usage: sudo bench/bridge.sh [seconds]      (default 10; needs root, OVS, iperf3)
# Everything it creates is removed when it ends. Do not run it while the
# ovsbridge integration test runs (same namespace names).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp /tmp/obrt-bench.XXXXXX)
log=$(mktemp /tmp/obrt-bench-log.XXXXXX)
trap 'rm -f "$bin" "$log"' EXIT
go test -c -o "$bin" ./internal/datapath/ovsbridge
set +e
OVNSEC_BENCH=1 OVNSEC_BENCH_SECONDS="${1:-10}" "$bin" -test.run '^TestBenchBridge$' -test.v >"$log" 2>&1
rc=$?
set -e
if [ "$rc" -ne 0 ] || ! grep -q '^BENCH' "$log"; then
  tail -n 60 "$log"
  exit 1
fi
sed -n '/^BENCH/,/^(a)/p' "$log"
