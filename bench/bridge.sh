#!/usr/bin/env bash
# bridge.sh: throughput bench of the OVS br-phy side-car attachment
# (internal/datapath/ovsbridge) with the ESP hook (internal/datapath/esphook).
# Two hosts in network namespaces natv-bx-a and natv-bx-b (underlay
# 198.51.100.0/24, overlay 203.0.113.0/24), each with its own ovsdb-server
# and ovs-vswitchd (userspace datapath); iperf3 TCP, one stream, over the
# Geneve overlay, one run per mode:
#   (a) plain Geneve: no policies, br-phy forwards tunnel packets with NORMAL
#   (b) attachment + Passthrough: steering through the engine, no encryption
#   (c) attachment + ESP: the ESP hook with static keys (AES-128-GCM)
# It prints a table and "ratio bridge_passthrough_vs_plain <v>" and
# "ratio bridge_esp_vs_plain <v>" lines. The overlay MTU is the same in
# every mode (room for ESP).
#
# Usage: sudo bench/bridge.sh [seconds]      (default 10; needs root, OVS, iperf3)
# Everything it creates is removed when it ends. Do not run it while the
# esphook tests run.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp /tmp/natv-bench.XXXXXX)
log=$(mktemp /tmp/natv-bench-log.XXXXXX)
trap 'rm -f "$bin" "$log"' EXIT
go test -c -o "$bin" ./internal/datapath/esphook
set +e
OVNSEC_BENCH=1 OVNSEC_BENCH_SECONDS="${1:-10}" "$bin" -test.run '^TestBenchBridgeESP$' -test.v >"$log" 2>&1
rc=$?
set -e
if [ "$rc" -ne 0 ] || ! grep -q '^BENCH' "$log"; then
  tail -n 60 "$log"
  exit 1
fi
sed -n '/^BENCH/,/^ratio bridge_esp_vs_plain/p' "$log"
