#!/usr/bin/env bash
# tun.sh: throughput bench of the tunnel-mode ESP data path over TUN
# (internal/datapath/tun, run as cmd/ovnsec-esp with static test keys).
# Two hosts in network namespaces tunt-ba and tunt-bb joined by a veth
# (underlay 192.0.2.1/.2), iperf3 TCP between them over:
#   (a) veth:    the plain veth, underlay addresses (baseline)
#   (b) ovnsec:  ovnsec tunnel-mode ESP-in-UDP over TUN, inner 203.0.113.1/.2
# Each cell is the median of RUNS runs of SECONDS (receiver side). CPU% is
# the engine processes of both ends together (utime+stime, % of one core);
# sys is the busy time of the whole machine (out of 100% x cores).
#
# Usage: sudo bench/tun.sh [seconds] [runs]      (default 10 3; needs root)
#
# Adding a system (wireguard-go, strongSwan libipsec: a later issue): write
# start_<name> (start both ends, set ENGINE_PIDS and DST to the server's
# address) and stop_<name>, and append <name> to SYSTEMS below. Everything
# else (runs, medians, CPU, table) is shared.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${1:-10}
RUNS=${2:-3}
SYSTEMS=(veth ovnsec)   # hook: add wg, strongswan here
# TUN_BENCH_PLAIN=1 adds ovnsec without UDP GSO/GRO, to show what they bring.
[ "${TUN_BENCH_PLAIN:-0}" = 1 ] && SYSTEMS+=(ovnsec_nogso)
NSA=tunt-ba NSB=tunt-bb VA=tunt-bva VB=tunt-bvb

[ "$(id -u)" -eq 0 ] || { echo "tun.sh: needs root (network namespaces, TUN)" >&2; exit 1; }
scripts/install-deps.sh >/dev/null
for c in ip iperf3 ping python3 go; do
  command -v "$c" >/dev/null || { echo "tun.sh: $c not found" >&2; exit 1; }
done

work=$(mktemp -d /tmp/tunt-bench.XXXXXX)
ENGINE_PIDS=()
cleanup() {
  for p in "${ENGINE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${ENGINE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -f "$work/iperf.pid" ] && kill "$(cat "$work/iperf.pid")" 2>/dev/null || true
  ip netns del "$NSA" 2>/dev/null || true
  ip netns del "$NSB" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "building cmd/ovnsec-esp" >&2
go build -o "$work/ovnsec-esp" ./cmd/ovnsec-esp

# Namespaces (ours: the tunt- prefix; leftovers of an interrupted run go).
ip netns del "$NSA" 2>/dev/null || true
ip netns del "$NSB" 2>/dev/null || true
ip netns add "$NSA"
ip netns add "$NSB"
ip link add "$VA" netns "$NSA" type veth peer name "$VB" netns "$NSB"
ip -n "$NSA" addr add 192.0.2.1/24 dev "$VA"
ip -n "$NSB" addr add 192.0.2.2/24 dev "$VB"
for n in "$NSA" "$NSB"; do ip -n "$n" link set lo up; done
ip -n "$NSA" link set "$VA" up
ip -n "$NSB" link set "$VB" up

ip netns exec "$NSB" iperf3 -s -D --pidfile "$work/iperf.pid" >/dev/null
sleep 0.3

# --- systems -------------------------------------------------------------
start_veth() { DST=192.0.2.2; }
stop_veth() { :; }

# Static test keys (AES-256-GCM key + salt, 36 bytes): never use elsewhere.
# They go to the engines in 0600 key files ($work is 0700) written by bash
# builtins, never on a command line.
KEY_AB=$(printf '%072d' 0 | tr 0 a)
KEY_BA=$(printf '%072d' 0 | tr 0 b)
(
  umask 077
  printf 'key-out %s\nkey-in %s\n' "$KEY_AB" "$KEY_BA" >"$work/esp-a.keys"
  printf 'key-out %s\nkey-in %s\n' "$KEY_BA" "$KEY_AB" >"$work/esp-b.keys"
)
start_ovnsec() {
  local extra=("$@")
  ip netns exec "$NSA" "$work/ovnsec-esp" --static-keys-for-testing --dev tunt0 "${extra[@]}" \
    --local 192.0.2.1 --remote 192.0.2.2 --addr 203.0.113.1/32 --remote-net 203.0.113.2/32 \
    --spi-out 0x1001 --spi-in 0x2002 --key-file "$work/esp-a.keys" \
    >"$work/esp-a.out" 2>"$work/esp-a.log" &
  ENGINE_PIDS+=($!)
  ip netns exec "$NSB" "$work/ovnsec-esp" --static-keys-for-testing --dev tunt0 "${extra[@]}" \
    --local 192.0.2.2 --remote 192.0.2.1 --addr 203.0.113.2/32 --remote-net 203.0.113.1/32 \
    --spi-out 0x2002 --spi-in 0x1001 --key-file "$work/esp-b.keys" \
    >"$work/esp-b.out" 2>"$work/esp-b.log" &
  ENGINE_PIDS+=($!)
  DST=203.0.113.2
  for _ in $(seq 50); do
    ip netns exec "$NSA" ping -c 1 -W 1 "$DST" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "tun.sh: ovnsec tunnel did not come up" >&2
  cat "$work"/esp-*.log >&2
  exit 1
}
stop_ovnsec() {
  for p in "${ENGINE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${ENGINE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ENGINE_PIDS=()
  echo "ovnsec counters: A $(cat "$work/esp-a.out") B $(cat "$work/esp-b.out")" >&2
}

start_ovnsec_nogso() { start_ovnsec --no-gso --no-gro; }
stop_ovnsec_nogso() { stop_ovnsec; }

# --- measurement ---------------------------------------------------------
HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
proc_ticks() { # utime+stime of the given pids
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}
sys_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

# one_run <streams>: prints "mbps engine_cpu% sys_busy%"
one_run() {
  local streams=$1 t0 t1 s0 s1 start end json
  t0=$(proc_ticks "${ENGINE_PIDS[@]}")
  read -r s0 a0 < <(sys_busy)
  start=$(date +%s.%N)
  json=$(ip netns exec "$NSA" iperf3 -c "$DST" -t "$SECONDS_PER_RUN" -P "$streams" -J)
  end=$(date +%s.%N)
  t1=$(proc_ticks "${ENGINE_PIDS[@]}")
  read -r s1 a1 < <(sys_busy)
  python3 - "$json" "$t0" "$t1" "$HZ" "$start" "$end" "$s0" "$a0" "$s1" "$a1" "$NCPU" "${#ENGINE_PIDS[@]}" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
t0, t1, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
el = float(sys.argv[6]) - float(sys.argv[5])
s0, a0, s1, a1, ncpu, neng = (int(x) for x in sys.argv[7:13])
mbps = j["end"]["sum_received"]["bits_per_second"] / 1e6
eng = "-" if neng == 0 else "%.0f" % ((t1 - t0) / hz / el * 100)
busy = (s1 - s0) / max(a1 - a0, 1) * 100 * ncpu
print("%.0f %s %.0f" % (mbps, eng, busy))
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A RES
for sys in "${SYSTEMS[@]}"; do
  "start_$sys"
  for streams in 1 4; do
    runs=()
    for r in $(seq "$RUNS"); do
      line=$(one_run "$streams")
      echo "  $sys P$streams run $r: $line" >&2
      runs+=("$line")
    done
    # The run with the median throughput gives all three columns.
    med=$(printf '%s\n' "${runs[@]}" | awk '{print $1}' | median)
    RES[$sys,$streams]=$(printf '%s\n' "${runs[@]}" | awk -v m="$med" '$1==m {print; exit}')
    RES[$sys,$streams,range]=$(printf '%s\n' "${runs[@]}" | awk 'NR==1{lo=hi=$1} {if($1<lo)lo=$1; if($1>hi)hi=$1} END{print lo "-" hi}')
  done
  "stop_$sys"
done

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.3f' % (a/b if b else 0))" "$1" "$2"; }

printf '\n%-13s %8s %13s %6s %13s %8s %13s %6s %13s\n' system "P1 Mbit/s" "[min-max]" ratio "CPU eng/sys" "P4 Mbit/s" "[min-max]" ratio "CPU eng/sys"
for sys in "${SYSTEMS[@]}"; do
  read -r m1 e1 b1 <<<"${RES[$sys,1]}"
  read -r m4 e4 b4 <<<"${RES[$sys,4]}"
  read -r v1 _ _ <<<"${RES[veth,1]}"
  read -r v4 _ _ <<<"${RES[veth,4]}"
  printf '%-13s %8s %13s %6s %13s %8s %13s %6s %13s\n' "$sys" "$m1" "[${RES[$sys,1,range]}]" "$(ratio "$m1" "$v1")" "$e1/$b1" \
    "$m4" "[${RES[$sys,4,range]}]" "$(ratio "$m4" "$v4")" "$e4/$b4"
done
echo "(median of $RUNS x ${SECONDS_PER_RUN}s iperf3 TCP, receiver side; CPU eng = engine processes, % of one core; sys = machine busy, out of $((NCPU * 100))%)"

read -r esp1 _ _ <<<"${RES[ovnsec,1]}"
read -r esp4 _ _ <<<"${RES[ovnsec,4]}"
read -r veth1 _ _ <<<"${RES[veth,1]}"
echo "figure tun_esp_mbps $esp1"
echo "figure tun_esp_mbps_4streams $esp4"
echo "ratio esp_tun_vs_veth $(ratio "$esp1" "$veth1")"
