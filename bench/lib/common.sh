# shellcheck shell=bash
# common.sh: shared plumbing for bench/run.sh: dependencies, network
# namespace pairs, process cleanup, and one measured iperf3 run (throughput,
# retransmits, CPU of the tunnel processes and of the whole machine).
# Sourced, not executed. Everything it creates is recorded so that
# bench_cleanup removes exactly that and nothing else.

# Namespaces, pids and extra cleanup commands we own.
BENCH_NETNS=()
BENCH_PIDS=()
BENCH_ATEXIT=()

bench_log() { printf 'bench: %s\n' "$*" >&2; }
bench_die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# bench_install_deps installs the Debian packages the bench needs, without
# touching apt when they are present (install-deps.sh style), and the
# wireguard-tools package without recommends (plain install pulls in a
# kernel image and systemd).
bench_install_deps() {
  scripts/install-deps.sh >&2 || bench_die "scripts/install-deps.sh failed; run it by hand to see why"
  local extra=()
  dpkg-query -W -f='${Status}' wireguard-tools 2>/dev/null | grep -q "install ok installed" || extra+=(wireguard-tools)
  if [ "${#extra[@]}" -gt 0 ]; then
    bench_log "installing ${extra[*]} (--no-install-recommends)"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q >&2 ||
      bench_die "apt-get update failed; check the Debian mirror"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
      --no-install-recommends "${extra[@]}" >&2 ||
      bench_die "apt-get install ${extra[*]} failed"
  fi
  command -v go >/dev/null ||
    bench_die "go not found on PATH (sudo resets PATH; run: sudo env PATH=\"\$PATH\" bench/run.sh)"
  local c
  for c in ip iperf3 ping ss wg /usr/bin/python3 /usr/lib/ipsec/charon swanctl; do
    command -v "$c" >/dev/null || bench_die "$c not found after installing dependencies"
  done
}

# bench_ns_pair TAG ADDR_A ADDR_B PREFIXLEN: two namespaces bnch-TAG-a and
# bnch-TAG-b joined by the veth pair bnchTAGa/bnchTAGb, with the underlay
# addresses given. A leftover pair of an interrupted run is removed first.
bench_ns_pair() {
  local tag=$1 a=$2 b=$3 plen=$4 na="bnch-$1-a" nb="bnch-$1-b"
  ip netns del "$na" 2>/dev/null || true
  ip netns del "$nb" 2>/dev/null || true
  ip netns add "$na" || bench_die "ip netns add $na failed"
  BENCH_NETNS+=("$na")
  ip netns add "$nb" || bench_die "ip netns add $nb failed"
  BENCH_NETNS+=("$nb")
  ip link add "bnch${tag}a" netns "$na" type veth peer name "bnch${tag}b" netns "$nb" ||
    bench_die "create veth bnch${tag}a/bnch${tag}b failed"
  ip -n "$na" addr add "$a/$plen" dev "bnch${tag}a"
  ip -n "$nb" addr add "$b/$plen" dev "bnch${tag}b"
  ip -n "$na" link set lo up
  ip -n "$nb" link set lo up
  ip -n "$na" link set "bnch${tag}a" up
  ip -n "$nb" link set "bnch${tag}b" up
}

# bench_kill PID...: TERM, wait up to 3 s, then KILL. Only our own pids.
bench_kill() {
  local p
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 30); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

bench_cleanup() {
  local c n
  [ "${#BENCH_PIDS[@]}" -gt 0 ] && bench_kill "${BENCH_PIDS[@]}"
  for c in "${BENCH_ATEXIT[@]}"; do eval "$c" || true; done
  for n in "${BENCH_NETNS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  BENCH_PIDS=() BENCH_ATEXIT=() BENCH_NETNS=()
}

# bench_wait_ping NS DST: wait up to 10 s for one ping answer.
bench_wait_ping() {
  for _ in $(seq 50); do
    ip netns exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# bench_rtt NS DST: average RTT in ms of 50 pings 10 ms apart.
bench_rtt() {
  ip netns exec "$1" ping -q -c 50 -i 0.01 -W 1 "$2" 2>/dev/null |
    awk -F/ '/^rtt|^round-trip/ {print $5; found=1} END {if (!found) print "-"}'
}

bench_ticks() { # utime+stime of the given pids (whole thread group), in clock ticks
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    # Fields after the ")" of comm: utime is the 12th, stime the 13th.
    t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}
bench_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

# bench_iperf NS_CLIENT SRC DST STREAMS SECONDS PID...: one iperf3 TCP run.
# Prints "mbps retransmits tunnel_cpu% machine_busy%": receiver-side
# throughput, the sender's TCP retransmits, utime+stime of the tunnel pids
# over the run (% of one core, "-" without pids) and the busy time of the
# whole machine over the run (out of 100% x cores).
bench_iperf() {
  local ns=$1 src=$2 dst=$3 streams=$4 secs=$5
  shift 5
  local t0 t1 s0 a0 s1 a1 start end json
  t0=$(bench_ticks "$@")
  read -r s0 a0 < <(bench_busy)
  start=$(date +%s.%N)
  json=$(ip netns exec "$ns" iperf3 -c "$dst" -B "$src" -t "$secs" -P "$streams" -J 2>/dev/null) || {
    bench_log "iperf3 to $dst failed: $(printf '%s' "$json" | tr '\n' ' ' | cut -c1-300)"
    return 1
  }
  end=$(date +%s.%N)
  t1=$(bench_ticks "$@")
  read -r s1 a1 < <(bench_busy)
  printf '%s' "$json" | /usr/bin/python3 -c "$BENCH_IPERF_PY" "$t0" "$t1" "$(getconf CLK_TCK)" \
    "$start" "$end" "$s0" "$a0" "$s1" "$a1" "$(nproc)" "$#"
}

# BENCH_IPERF_PY reads iperf3 -J output on stdin; see bench_iperf.
BENCH_IPERF_PY='
import json, sys
j = json.load(sys.stdin)
if "error" in j:
    sys.exit("iperf3: " + j["error"])
t0, t1, hz = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
el = float(sys.argv[5]) - float(sys.argv[4])
s0, a0, s1, a1, ncpu, npids = (int(x) for x in sys.argv[6:12])
mbps = j["end"]["sum_received"]["bits_per_second"] / 1e6
rtx = j["end"]["sum_sent"].get("retransmits", 0)
tun = "-" if npids == 0 else "%.0f" % ((t1 - t0) / hz / el * 100)
busy = (s1 - s0) / max(a1 - a0, 1) * 100 * ncpu
print("%.0f %d %s %.0f" % (mbps, rtx, tun, busy))
'

# bench_iperf_server NS: an iperf3 server in NS until cleanup.
bench_iperf_server() {
  ip netns exec "$1" iperf3 -s >/dev/null 2>&1 &
  BENCH_PIDS+=($!)
  for _ in $(seq 30); do
    ip netns exec "$1" ss -Htln 'sport = :5201' 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  bench_log "iperf3 server in $1 did not start"
  return 1
}

# bench_tun_info NS DEV: "MTU 1420, vnet_hdr on" for a TUN device (vnet_hdr
# on means the process asked for offloads: TSO/GSO super-packets cross it).
bench_tun_info() {
  ip -n "$1" -d link show "$2" 2>/dev/null | awk '
    NR == 1 { for (i = 1; i < NF; i++) if ($i == "mtu") mtu = $(i + 1) }
    { for (i = 1; i < NF; i++) if ($i == "vnet_hdr") vh = $(i + 1) }
    END { printf "MTU %s, vnet_hdr %s", (mtu == "" ? "?" : mtu), (vh == "" ? "?" : vh) }'
}
