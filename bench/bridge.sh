#!/usr/bin/env bash
# bridge.sh: throughput bench of the OVS br-phy side-car attachment
# (internal/datapath/ovsbridge) with the ESP hook (internal/datapath/esphook).
# Two hosts in network namespaces natv-bx-a and natv-bx-b (underlay
# 198.51.100.0/24, overlay 203.0.113.0/24), each with its own ovsdb-server
# and ovs-vswitchd (userspace datapath); iperf3 TCP, one stream, over the
# Geneve overlay, one run per mode and round:
#   (a) plain Geneve: no policies, br-phy forwards tunnel packets with NORMAL
#   (b) attachment + Passthrough: steering through the engine TAP, no encryption
#   (c) attachment + ESP: the ESP hook with static keys (AES-128-GCM), TAP port
#   (d) veth + ESP: engine port on a veth pair read/written in batches
#   (e) veth + ESP + direct: outbound ESP written by the engine straight to the NIC
# It prints a table (Mbit/s, ratio to (a), CPU of both ovs-vswitchd and of the
# engines, CPU seconds per GB moved) and "ratio bridge_<mode>_vs_plain <v>"
# lines, then "ratio bridge_esp_vs_plain <v>" for the default ESP mode. The
# overlay MTU is the same in every mode (room for ESP).
#
# Usage: sudo bench/bridge.sh [seconds [rounds]]   (default 10 s, 1 round;
#        with several rounds each mode's median is shown)
#        OVNSEC_BENCH_RATE=<Mbit/s> caps iperf3 to compare CPU per GB at
#        a fixed load instead of throughput; OVNSEC_BENCH_MODES=esp_tap,esp_direct
#        runs only those modes (and plain, the reference).
# Needs root, OVS, iperf3. Everything it creates is removed when it ends.
# Do not run it while the esphook tests run (same namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp /tmp/natv-bench.XXXXXX)
log=$(mktemp /tmp/natv-bench-log.XXXXXX)
trap 'rm -f "$bin" "$log"' EXIT
go test -c -o "$bin" ./internal/datapath/esphook
load0=$(cut -d' ' -f1-3 /proc/loadavg)
set +e
OVNSEC_BENCH=1 OVNSEC_BENCH_SECONDS="${1:-10}" OVNSEC_BENCH_ROUNDS="${2:-1}" \
  "$bin" -test.run '^TestBenchBridgeESP$' -test.v >"$log" 2>&1
rc=$?
set -e
if [ "$rc" -ne 0 ] || ! grep -q '^BENCH' "$log"; then
  tail -n 60 "$log"
  exit 1
fi
echo "load average: before $load0, after $(cut -d' ' -f1-3 /proc/loadavg)"
sed -n '/^BENCH/,/^ratio bridge_esp_vs_plain/p' "$log"
