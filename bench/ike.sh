#!/usr/bin/env bash
# ike.sh: bench row 3, the IKE handshake rate. One load generator
# (bench/ikeload run: K ovnsec IKE engines on K addresses, each running full
# handshakes back to back: IKE_SA_INIT + IKE_AUTH with one tunnel-mode Child
# SA, PSK, x25519, aes256gcm16, ESP-in-UDP, then a Delete of the IKE SA)
# against two responders in the same run, interleaved:
#   ovnsec      bench/ikeload respond (ovnsec's IKE engine, internal/ike; the
#               Child SAs are negotiated and handed to a no-op handler)
#   strongswan  Debian's charon 5.9.8, swanctl, kernel-libipsec (the Child
#               SAs are installed in libipsec's userspace SAD/SPD; all
#               identities use the same inner ranges 10.200.0.0/16 ===
#               10.201.0.0/16, so the policy and its one route via ipsec0
#               are shared and reference-counted, not added per SA)
# It reports completed handshakes/s, failures, latency p50/p99 and the
# responder's CPU time per handshake (/proc/<pid>/stat, all threads, over
# the measured window), median of BENCH_RUNS runs. Prints progress (stderr),
# a markdown section and the lines "figure ike_ovnsec_per_s",
# "figure ike_strongswan_per_s", "figure ike_ovnsec_responder_cpu_ms",
# "figure ike_strongswan_responder_cpu_ms", "ratio ike_rate_vs_strongswan"
# and "ratio ike_responder_cpu_strongswan_vs_ovnsec". On failure the
# section says "not measured: <reason>" and the exit status is non-zero.
#
# Usage: sudo bench/ike.sh
# Knobs (environment):
#   BENCH_SECONDS      measured seconds per run (default 10; 1 s warmup extra)
#   BENCH_RUNS         runs per responder, the median is reported (default 3)
#   BENCH_OUT          if a directory: also write ike.md and ike.figures there
#   BENCH_IKE_K        concurrent handshakes = generator identities (default 16, max 100)
#   BENCH_IKE_PIN      1 (default with >= 2 CPUs): generator on CPU 0, responder
#                      on CPU 1; 0: both float over all CPUs
#   BENCH_IKE_CHARON_LOG  charon's log level (default 0; 1 or 2 to debug)
#   BENCH_KEEP         1: keep the work directory (logs, configs); it is
#                      always kept when the bench fails
#
# Namespaces bnik-g (generator), bnik-o (ovnsec responder), bnik-s (charon);
# veths bnikgo/bnikog and bnikgs/bniksg; 198.51.100.0/25 towards ovnsec
# (generator .1-.K, responder .126), 198.51.100.128/25 towards charon
# (generator .129-.128+K, responder .254). Removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_IKE_K=${BENCH_IKE_K:-16}
WARMUP=1

# shellcheck source=bench/lib/common.sh
. bench/lib/common.sh

IKE_DONE=0
IKE_REASON="the script stopped early (see its log)"
OUT_DIR=""
[ -n "${BENCH_OUT:-}" ] && [ -d "${BENCH_OUT}" ] && OUT_DIR=$BENCH_OUT

# ike_fail REASON: record why nothing was measured and exit non-zero; the
# EXIT trap writes the "not measured" section.
ike_fail() {
  IKE_REASON=$1
  bench_log "ike: $1"
  exit 1
}

ike_exit() {
  local rc=$?
  bench_cleanup
  if [ "$IKE_DONE" != 1 ] && [ -n "$OUT_DIR" ]; then
    {
      echo "## IKE handshake rate"
      echo
      echo "not measured: $IKE_REASON"
    } >"$OUT_DIR/ike.md"
    : >"$OUT_DIR/ike.figures"
  fi
  if [ -n "${IKE_WORK:-}" ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$IKE_DONE" != 1 ]; then
      bench_log "ike: kept $IKE_WORK (logs, configs)"
    else
      rm -rf "$IKE_WORK"
    fi
  fi
  [ "$IKE_DONE" = 1 ] || [ "$rc" -ne 0 ] || rc=1
  exit "$rc"
}
trap ike_exit EXIT
trap 'IKE_REASON="interrupted"; exit 130' INT TERM

case "$BENCH_SECONDS" in '' | *[!0-9]* | 0) ike_fail "BENCH_SECONDS=$BENCH_SECONDS: want a whole number of seconds >= 1" ;; esac
case "$BENCH_RUNS" in '' | *[!0-9]* | 0) ike_fail "BENCH_RUNS=$BENCH_RUNS: want a whole number >= 1" ;; esac
case "$BENCH_IKE_K" in '' | *[!0-9]* | 0) ike_fail "BENCH_IKE_K=$BENCH_IKE_K: want a whole number 1..100" ;; esac
[ "$BENCH_IKE_K" -le 100 ] || ike_fail "BENCH_IKE_K=$BENCH_IKE_K: at most 100 (one address each in a /25)"
[ "$(id -u)" -eq 0 ] || ike_fail "needs root (network namespaces, ports 500/4500)"
for c in go ip taskset unshare swanctl /usr/lib/ipsec/charon /usr/bin/python3; do
  command -v "$c" >/dev/null || ike_fail "$c not found (run scripts/install-deps.sh; sudo resets PATH: sudo env PATH=\"\$PATH\" bench/ike.sh)"
done
NCPU=$(nproc)
PIN=${BENCH_IKE_PIN:-$([ "$NCPU" -ge 2 ] && echo 1 || echo 0)}
GEN_PIN=() RESP_PIN=()
if [ "$PIN" = 1 ]; then
  [ "$NCPU" -ge 2 ] || ike_fail "BENCH_IKE_PIN=1 needs 2 CPUs, this machine has $NCPU"
  GEN_PIN=(taskset -c 0) RESP_PIN=(taskset -c 1)
fi

IKE_WORK=$(mktemp -d /tmp/bnik-ike.XXXXXX)
BIN=$IKE_WORK/ikeload
bench_log "ike: building bench/ikeload"
go build -o "$BIN" ./bench/ikeload 2>"$IKE_WORK/build.log" ||
  ike_fail "go build ./bench/ikeload failed: $(tail -n 3 "$IKE_WORK/build.log" | tr '\n' ' ')"

PSK=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export IKELOAD_PSK=$PSK
K=$BENCH_IKE_K
GEN_O=198.51.100.1 RESP_O=198.51.100.126 GEN_S=198.51.100.129 RESP_S=198.51.100.254

# Topology: bnik-g joined to bnik-o and to bnik-s by one veth pair each.
ike_netns() {
  local n
  for n in bnik-g bnik-o bnik-s; do
    ip netns del "$n" 2>/dev/null || true
    ip netns add "$n" || ike_fail "ip netns add $n failed"
    BENCH_NETNS+=("$n")
    ip -n "$n" link set lo up
  done
  ip link add bnikgo netns bnik-g type veth peer name bnikog netns bnik-o || ike_fail "create veth bnikgo/bnikog failed"
  ip link add bnikgs netns bnik-g type veth peer name bniksg netns bnik-s || ike_fail "create veth bnikgs/bniksg failed"
  ip -n bnik-o addr add "$RESP_O/25" dev bnikog
  ip -n bnik-s addr add "$RESP_S/25" dev bniksg
  # kernel-libipsec routes the remote inner range to its TUN with a
  # source address from the local inner range, so one must exist.
  ip -n bnik-s addr add 10.201.0.1/32 dev lo
  local i
  for ((i = 0; i < K; i++)); do
    ip -n bnik-g addr add "198.51.100.$((1 + i))/25" dev bnikgo
    ip -n bnik-g addr add "198.51.100.$((129 + i))/25" dev bnikgs
  done
  ip -n bnik-g link set bnikgo up
  ip -n bnik-g link set bnikgs up
  ip -n bnik-o link set bnikog up
  ip -n bnik-s link set bniksg up
}

# start_ovnsec: the ovnsec responder in bnik-o; sets PID_O.
start_ovnsec() {
  "${RESP_PIN[@]}" ip netns exec bnik-o "$BIN" respond -local "$RESP_O" -peers "$GEN_O" -n "$K" \
    -log-level info -log-file "$IKE_WORK/ovnsec.log" >"$IKE_WORK/ovnsec.out" 2>&1 &
  PID_O=$!
  BENCH_PIDS+=("$PID_O")
  for _ in $(seq 50); do
    grep -q '^ready' "$IKE_WORK/ovnsec.out" && return 0
    kill -0 "$PID_O" 2>/dev/null || break
    sleep 0.1
  done
  ike_fail "ovnsec responder did not start: $(tail -n 3 "$IKE_WORK/ovnsec.out" | tr '\n' ' ')"
}

# start_charon: charon in bnik-s with the same proposals and PSK; sets
# PID_S. DoS protection and cookies are off (the ovnsec responder has
# them off too); the IKE_SA table is sized for load; logging at level 0
# (one line per IKE_SA/CHILD_SA event, like ovnsec at info).
start_charon() {
  local d=$IKE_WORK/charon
  mkdir -p "$d"
  cat >"$d/strongswan.conf" <<EOC
charon {
  load_modular = no
  load = random nonce aesni openssl aes gcm sha1 sha2 hmac kdf pem pkcs1 pkcs8 x509 pubkey constraints revocation socket-default kernel-libipsec kernel-netlink vici
  port = 500
  port_nat_t = 4500
  install_routes = no
  install_virtual_ip = no
  dos_protection = no
  cookie_threshold = 1000000
  block_threshold = 1000000
  init_limit_half_open = 0
  ikesa_table_size = 1024
  ikesa_table_segments = 16
  plugins {
    vici {
      socket = unix://$d/charon.vici
    }
  }
  filelog {
    bnik {
      path = $d/charon.log
      default = ${BENCH_IKE_CHARON_LOG:-0}
      flush_line = no
    }
  }
  syslog {
    identifier = charon-bnik
    daemon {
      default = -1
    }
  }
}
EOC
  cat >"$d/swanctl.conf" <<EOC
connections {
  bnik {
    version = 2
    local_addrs = $RESP_S
    remote_addrs = 198.51.100.128/25
    proposals = aes256gcm16-prfsha256-x25519
    dpd_delay = 0
    local {
      auth = psk
      id = $RESP_S
    }
    remote {
      auth = psk
    }
    children {
      load {
        mode = tunnel
        local_ts = 10.201.0.0/16
        remote_ts = 10.200.0.0/16
        esp_proposals = aes256gcm16
        start_action = none
      }
    }
  }
}
secrets {
  ike-bnik {
    secret = "$PSK"
  }
}
EOC
  # ip netns exec, unshare (without --fork), sh and taskset all exec, so
  # $! is charon itself. charon's pid file /run/charon.pid is compiled in,
  # hence the private /run.
  STRONGSWAN_CONF="$d/strongswan.conf" "${RESP_PIN[@]}" ip netns exec bnik-s unshare -m --propagation private \
    sh -c "mount -t tmpfs bnik-run /run && exec /usr/lib/ipsec/charon" >"$d/charon.out" 2>&1 &
  PID_S=$!
  BENCH_PIDS+=("$PID_S")
  for _ in $(seq 50); do
    swanctl --stats --uri "unix://$d/charon.vici" >/dev/null 2>&1 && break
    kill -0 "$PID_S" 2>/dev/null || ike_fail "charon exited at start: $(tail -n 3 "$d/charon.out" | tr '\n' ' ')"
    sleep 0.1
  done
  swanctl --load-all --file "$d/swanctl.conf" --uri "unix://$d/charon.vici" >"$d/load.out" 2>&1 ||
    ike_fail "swanctl --load-all failed: $(tail -n 3 "$d/load.out" | tr '\n' ' ')"
}

# state_after SYS: what the responder still holds after a run (should be
# about nothing: every IKE SA was deleted).
state_after() {
  case $1 in
    ovnsec)
      kill -USR1 "$PID_O"
      sleep 0.2
      grep '^responder:' "$IKE_WORK/ovnsec.out" | tail -n 1 | sed 's/^responder: //'
      ;;
    strongswan)
      swanctl --stats --uri "unix://$IKE_WORK/charon/charon.vici" 2>/dev/null | awk '/^IKE_SAs:/ {sub(/^IKE_SAs: /, "IKE_SAs "); print}'
      ;;
  esac
}

# one_run SYS N: one generator run against SYS, result in run-SYS-N.json.
one_run() {
  local sys=$1 n=$2 gen remote pid out
  case $sys in
    ovnsec) gen=$GEN_O remote=$RESP_O pid=$PID_O ;;
    strongswan) gen=$GEN_S remote=$RESP_S pid=$PID_S ;;
  esac
  out=$IKE_WORK/run-$sys-$n.json
  kill -0 "$pid" 2>/dev/null || ike_fail "the $sys responder (pid $pid) is gone before run $n"
  "${GEN_PIN[@]}" ip netns exec bnik-g "$BIN" run -local "$gen" -n "$K" -remote "$remote" \
    -duration "${BENCH_SECONDS}s" -warmup "${WARMUP}s" -responder-pid "$pid" \
    -log-file "$IKE_WORK/generator-$sys.log" >"$out" 2>"$IKE_WORK/generator-$sys-$n.err" ||
    ike_fail "generator run $n against $sys failed: $(tail -n 3 "$IKE_WORK/generator-$sys-$n.err" | tr '\n' ' ')"
  local summary
  summary=$(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
print("%.0f/s, %d failed, p50 %.2f ms, p99 %.2f ms, responder %.3f ms CPU/handshake, generator %.3f" % (
  r["per_s"], r["failed"], r["p50_ms"], r["p99_ms"], r["responder_cpu_ms_per_handshake"], r["generator_cpu_ms_per_handshake"]))' "$out")
  bench_log "ike: run $n $sys: $summary; left on responder: $(state_after "$sys")"
  grep -q '"completed":0,' "$out" && ike_fail "no handshake completed against $sys in run $n: $(grep -o '"fail_reasons":{[^}]*}' "$out" | cut -c1-300)"
  return 0
}

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
ike_netns
start_ovnsec
start_charon
bench_log "ike: K=$K concurrent handshakes, ${BENCH_SECONDS}s (+${WARMUP}s warmup) x $BENCH_RUNS runs per responder, pinning=$PIN"
for ((r = 1; r <= BENCH_RUNS; r++)); do
  # ABBA order, so slow drift in background load hits both alike.
  if ((r % 2)); then order=(ovnsec strongswan); else order=(strongswan ovnsec); fi
  for s in "${order[@]}"; do one_run "$s" "$r"; done
done

SS_VERSION=$(dpkg-query -W -f='${Version}' strongswan-charon 2>/dev/null || echo "?")
CHILD=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["child"])' "$IKE_WORK/run-strongswan-1.json")
REPORT=$IKE_WORK/report
/usr/bin/python3 - "$IKE_WORK" "$BENCH_RUNS" "$BENCH_SECONDS" "$K" "$PIN" "$NCPU" "$LOAD_BEFORE" "$SS_VERSION" "$CHILD" >"$REPORT" <<'EOF' ||
import json, statistics, sys
work, runs, secs, k, pin, ncpu, load, ssv, child = sys.argv[1:10]
runs, secs = int(runs), int(secs)
names = {"ovnsec": "ovnsec (internal/ike)", "strongswan": "strongSwan charon %s" % ssv}
med = {}
rows = []
for s in ("ovnsec", "strongswan"):
    rs = [json.load(open("%s/run-%s-%d.json" % (work, s, i))) for i in range(1, runs + 1)]
    m = lambda key: statistics.median(r[key] for r in rs)
    rate = [r["per_s"] for r in rs]
    med[s] = {"rate": m("per_s"), "cpu": m("responder_cpu_ms_per_handshake"),
              "gen_pct": m("generator_cpu_ms") / secs / 10, "busy": m("machine_busy_pct")}
    rows.append("| %s | **%.0f** [%.0f–%.0f] | **%.3f** | %.0f | %.0f%% | %.3f ms, %.0f%% | %.1f / %.1f | %d | %.0f%% |" % (
        names[s], m("per_s"), min(rate), max(rate), m("responder_cpu_ms_per_handshake"),
        1000 / max(m("responder_cpu_ms_per_handshake"), 1e-9),
        m("responder_cpu_ms") / secs / 10, m("generator_cpu_ms_per_handshake"), med[s]["gen_pct"],
        m("p50_ms"), m("p99_ms"), sum(r["failed"] for r in rs), med[s]["busy"]))
ratio = med["ovnsec"]["rate"] / med["strongswan"]["rate"]
cpu_ratio = med["strongswan"]["cpu"] / med["ovnsec"]["cpu"]
pinning = ("the generator is pinned to CPU 0 and the responder to CPU 1 (taskset), so each has one core"
           if pin == "1" else "generator and responder share all %s CPUs" % ncpu)
md = []
md.append("## IKE handshake rate")
md.append("")
md.append(("One load generator (`bench/ikeload run`, ovnsec's IKE engine as initiator) runs %s handshakes at a time "
           "from %s addresses in one network namespace to a responder in another, over veth and real UDP: "
           "IKE_SA_INIT + IKE_AUTH with one tunnel-mode Child SA, PSK, aes256gcm16-prfsha256-x25519, ESP aes256gcm16, "
           "ESP-in-UDP (IKE_AUTH on port 4500). Each IKE SA is deleted (INFORMATIONAL Delete) before the identity's next "
           "handshake, so both responders do the same work per handshake and hold at most %s SAs. "
           "Responders: ovnsec's engine (`bench/ikeload respond`; Child SAs negotiated and handed to a no-op handler, "
           "no datapath) and Debian's charon %s with kernel-libipsec (Child SAs installed in libipsec's userspace "
           "SAD/SPD; every identity uses the same inner ranges, so the one policy and route via ipsec0 are shared), DoS protection and cookies off on both, each logging about one line per SA event to a file (ovnsec at info, ovnsecd's default; charon at level 0, below its default of 1). "
           "Child SA as negotiated with charon: %s. %s s measured after 1 s warmup, runs interleaved, median of %d "
           "(min–max in brackets). Responder CPU is utime+stime of the responder process (all threads, "
           "/proc/<pid>/stat) over the measured window; %s. The machine has %s CPUs shared with the generator "
           "(and with anything else running: the 1-minute load average before the run was %s).")
          % (k, k, k, ssv, child, secs, runs, pinning, ncpu, load))
md.append("")
md.append("| responder | handshakes/s | responder CPU ms/handshake | responder capacity per core (1000 / CPU ms) | responder CPU | generator CPU per handshake, total | latency p50 / p99 ms | failures | machine busy (of %d%%) |" % (100 * int(ncpu)))
md.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
md.extend(rows)
md.append("")
goal = "met" if ratio >= 2 else "not met"
md.append("Goal (handshakes/s at least 2× strongSwan's responder rate, same run): **%s**, ratio %.2f. "
          "Responder CPU per handshake: strongSwan needs %.2f× ovnsec's." % (goal, ratio, cpu_ratio))
notes = []
for s in ("ovnsec", "strongswan"):
    if pin == "1" and med[s]["gen_pct"] >= 90:
        notes.append("in the %s runs the generator used %.0f%% of its core, so it, not the responder, limited the rate "
                     "(the ovnsec initiator costs about as much per handshake as the ovnsec responder)" % (s, med[s]["gen_pct"]))
    if med[s]["busy"] >= 95 * int(ncpu):
        notes.append("in the %s runs the whole machine was busy (%.0f%% of %d%%, other processes included), so the rate "
                     "is bounded by CPU left over, not by the responder alone" % (s, med[s]["busy"], 100 * int(ncpu)))
if float(load) > int(ncpu):
    md.append("")
    md.append("**Warning:** the 1-minute load average before the run (%s) was above the number of CPUs (%s): other work "
              "competed for the CPU, so the handshake rates show each process's share of the scheduler (charon runs 16 "
              "threads, the Go processes fewer) more than its efficiency. Compare the responder CPU per handshake, or "
              "run again on a quiet machine." % (load, ncpu))
md.append("")
if notes:
    md.append("Limits: " + "; ".join(notes) + ". Responder CPU per handshake depends much less on that and is the "
              "figure that compares the responders.")
else:
    md.append("The generator was not the bottleneck (its CPU stayed below 90% of a core and the machine was not saturated).")
print("\n".join(md))
print("@@FIGURES")
print("figure ike_ovnsec_per_s %.1f" % med["ovnsec"]["rate"])
print("figure ike_strongswan_per_s %.1f" % med["strongswan"]["rate"])
print("figure ike_ovnsec_responder_cpu_ms %.4f" % med["ovnsec"]["cpu"])
print("figure ike_strongswan_responder_cpu_ms %.4f" % med["strongswan"]["cpu"])
print("ratio ike_rate_vs_strongswan %.3f" % ratio)
print("ratio ike_responder_cpu_strongswan_vs_ovnsec %.3f" % cpu_ratio)
EOF
  ike_fail "could not summarize the runs (python3 failed)"

sed '/^@@FIGURES$/,$d' "$REPORT"
echo
sed '1,/^@@FIGURES$/d' "$REPORT"
if [ -n "$OUT_DIR" ]; then
  sed '/^@@FIGURES$/,$d' "$REPORT" >"$OUT_DIR/ike.md"
  sed '1,/^@@FIGURES$/d' "$REPORT" >"$OUT_DIR/ike.figures"
fi
IKE_DONE=1
