#!/usr/bin/env bash
# ovn.sh: bench rows 2 and 5 of issue 8 on the 3-chassis OVN demo cluster
# (scripts/demo.sh, ovnsecd with the native IKE + ESP backend).
#
# Row 2, the OVN path: iperf3 TCP, 1 stream, receiver side, VM vm1 (ch1)
# to vm2 (ch2), with OVN's ipsec=false and ipsec=true, runs interleaved
# (false, true, false, true, ...), the median of BENCH_RUNS runs of
# BENCH_SECONDS; CPU of ovs-vswitchd and ovnsecd of ch1 and ch2 and the
# busy time of the whole machine over each run; ping RTT before each run.
#
# Row 5, rekey loss under load: with ipsec=true, iperf3 UDP vm1 -> vm2 at a
# fixed rate plus a 10 ms ping, first for a control period without rekeys,
# then with a 10 s Child SA lifetime (rekey margin 7 s) on the ch1-ch2
# tunnel at both ends until ch1's ovnsecd has installed REKEY_COUNT Child SA
# rekeys. Reports datagrams lost in both periods, pings lost, the ESP
# engine's drop counters by reason, and where packets ch1 -> ch2 were lost
# (ch1's engine, the underlay, ch2's engine) from the OpenFlow counters of
# ovnsecd's steering rules on ovd-phy.
#
# Usage: sudo bench/ovn.sh
# Knobs (environment):
#   BENCH_SECONDS  seconds per iperf3 TCP run (default 10)
#   BENCH_RUNS     runs per ipsec setting, the median is reported (default 3)
#   REKEY_COUNT    Child SA rekeys to wait for under load (default 20)
#   REKEY_RATES    UDP rates in Mbit/s to try, highest first; the first one
#                  a 3 s probe carries without loss is used (default "20 10 5")
#   BENCH_OUT      a directory: also write ovn.md and ovn.figures there
#   BENCH_OVN_STATE the demo's state directory (default /tmp/ovnsec-bench-ovn)
#   BENCH_KEEP     1: keep the work directory (logs, JSON, daemon logs)
#   DEMO_SKIP_BUILD=1 is passed on to scripts/demo.sh (no go build).
#
# The demo cluster uses the fixed ovd-* namespaces: the script holds
# /tmp/ovnsec-ovd.lock (flock), the lock of every user of the cluster
# (scripts/demo.sh, the demo tests of test/e2e), for its whole run, waiting
# up to 15 min for it; it hands it to scripts/demo.sh (OVD_LOCK_FD=9) and
# tears the cluster down (scripts/demo.sh down) at exit. It prints a markdown table and the
# machine-readable lines "figure <name> <value>" / "ratio <name> <value>".
# shellcheck disable=SC2317 # on_exit, report and short_lifetimes_up are called from a trap and through ovn_wait
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_RUNS=${BENCH_RUNS:-3}
REKEY_COUNT=${REKEY_COUNT:-20}
REKEY_RATES=${REKEY_RATES:-20 10 5}
OVN_STATE=${BENCH_OVN_STATE:-/tmp/ovnsec-bench-ovn}
# The Child SA lifetime and rekey margin of row 5: ovnsecd's minimum
# lifetime (internal/backend/native/lifetime.go MinLifetime) and a margin
# that starts a rekey about every 3 s per Child SA.
SA_LIFETIME=10
REKEY_MARGIN=7

for v in BENCH_SECONDS BENCH_RUNS REKEY_COUNT; do
  case "${!v}" in '' | *[!0-9]* | 0) echo "bench: $v=${!v}: want a whole number >= 1" >&2; exit 2 ;; esac
done
read -r -a RATES <<<"$REKEY_RATES"
[ "${#RATES[@]}" -gt 0 ] || { echo "bench: REKEY_RATES is empty; want Mbit/s values, e.g. \"20 10 5\"" >&2; exit 2; }
for r in "${RATES[@]}"; do
  case "$r" in '' | *[!0-9]* | 0) echo "bench: REKEY_RATES: $r: want whole Mbit/s >= 1" >&2; exit 2 ;; esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (network namespaces, OVS daemons)" >&2; exit 1; }

# shellcheck source=bench/lib/common.sh
. bench/lib/common.sh
# shellcheck source=bench/lib/table.sh
. bench/lib/table.sh # bench_div
# shellcheck source=bench/lib/ovn.sh
. bench/lib/ovn.sh

BENCH_WORK=$(mktemp -d /tmp/bnch-ovn.XXXXXX)
STAGE=2        # the row being measured: a failure marks it (and what follows) not measured
FAIL2="" FAIL5="" # "not measured" reasons
CLUSTER=0      # 1 once scripts/demo.sh up ran
STOPPED=()     # ovn-controller pids we SIGSTOPped
REPORTED=0
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
T_LOCKED=$T_START

fail() { # fail REASON: the current row (and the rows after it) are not measured
  bench_log "$*"
  if [ "$STAGE" = 2 ]; then FAIL2=$*; FAIL5="not run: row 2 failed first"; else FAIL5=$*; fi
  exit 1
}

# --- row 2 and row 5 results, filled as they are measured ------------------
RUNS_PLAIN="" RUNS_IPSEC="" SWITCH_TIMES=""
R5_RATE="" R5_NOTE="" R5_PROBES=""
declare -A R5 # period,field -> value; periods control and rekey

on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  local p
  for p in "${STOPPED[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
  bench_cleanup
  if [ "$CLUSTER" = 1 ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
      for p in 1 2 3; do cp "$(ovn_dir "$p")/ovnsecd.log" "$BENCH_WORK/ch$p-ovnsecd.log" 2>/dev/null || true; done
    fi
    bench_log "tearing the demo cluster down"
    OVD_LOCK_FD=9 DEMO_STATE=$OVN_STATE scripts/demo.sh down >>"$BENCH_WORK/demo.log" 2>&1 || bench_log "scripts/demo.sh down failed; see $BENCH_WORK/demo.log"
  fi
  if [ "$rc" != 0 ]; then
    if [ -z "$FAIL2" ] && [ -z "$RUNS_IPSEC" ]; then FAIL2="failed (exit $rc); see the messages above"; fi
    if [ -z "$FAIL5" ] && [ -z "${R5[rekey,lost]:-}" ]; then FAIL5="failed (exit $rc); see the messages above"; fi
  fi
  [ "$REPORTED" = 1 ] || report
  if [ "${BENCH_KEEP:-0}" = 1 ]; then bench_log "kept $BENCH_WORK"; else rm -rf "$BENCH_WORK"; fi
  [ "$rc" = 0 ] && { [ -n "$FAIL2" ] || [ -n "$FAIL5" ]; } && rc=1
  exit "$rc"
}
trap on_exit EXIT
trap 'bench_log "interrupted, cleaning up"; FAIL2=${FAIL2:-interrupted}; FAIL5=${FAIL5:-interrupted}; exit 130' INT TERM

# --- report ------------------------------------------------------------------
num() { [[ "${1:-}" =~ ^[0-9]+([.][0-9]+)?$ ]]; }
cores_per_gbps() { # BUSY% MBPS
  if num "$1" && num "$2"; then bench_div '%.2f' "$1" "$2" 10; else echo "–"; fi
}
row2_line() { # LABEL CELL
  local label=$1 cell=$2
  if [ "$cell" = none ]; then
    echo "| 2 | $label | failed | – | – | – | – | – | – |"
    return
  fi
  # shellcheck disable=SC2086 # split the cell
  set -- $cell
  echo "| 2 | $label | **$1** [$2–$3] | $4 | $5 | $6 | $7 | $(cores_per_gbps "$7" "$1") | $8 |"
}
report() {
  REPORTED=1
  local md=$BENCH_WORK/ovn.md figs=$BENCH_WORK/ovn.figures cellp celli ratio="" goals=""
  cellp=$(printf '%s' "$RUNS_PLAIN" | ovn_median)
  celli=$(printf '%s' "$RUNS_IPSEC" | ovn_median)
  if [ -z "$FAIL2" ] && [ "$cellp" != none ] && [ "$celli" != none ]; then
    ratio=$(bench_div '%.3f' "${celli%% *}" "${cellp%% *}")
  fi
  {
    echo "## OVN path and rekey loss (issue 8, rows 2 and 5)"
    echo
    echo "Generated by \`bench/ovn.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') (\`BENCH_SECONDS=$BENCH_SECONDS BENCH_RUNS=$BENCH_RUNS REKEY_COUNT=$REKEY_COUNT\`; load average when it started measuring: $LOAD_BEFORE; $(($(date +%s) - T_LOCKED)) s with the cluster, after $((T_LOCKED - T_START)) s waiting for the demo lock)."
    echo "The 3-chassis OVN cluster of \`scripts/demo.sh up\` (OVS userspace datapath, ovn-controller, ovnsecd with the"
    echo "native IKE + ESP backend, every chassis and VM a network namespace on this machine). Row 2: iperf3 TCP, 1 stream,"
    echo "vm1 (ch1) → vm2 (ch2), receiver side, ${BENCH_SECONDS} s per run, runs interleaved ipsec=false / ipsec=true"
    echo "(\`ovn-nbctl set nb_global . ipsec=…\`, then waiting until every tunnel is up with ESP steering rules, or gone);"
    echo "the median of $BENCH_RUNS run(s) with [min–max], the other columns from the median run. CPU: utime+stime"
    echo "(\`/proc/<pid>/stat\`) of ch1's and ch2's ovs-vswitchd and of their ovnsecd, % of one core; machine busy out of"
    echo "$(($(nproc) * 100))% includes both iperf3 ends and every daemon; ping RTT: 50 pings 10 ms apart before each run."
    echo "Row 5: ipsec=true; iperf3 UDP vm1 → vm2 (1300-byte datagrams) at a fixed rate plus a 10 ms ping vm1 → vm2,"
    echo "first a control period with the default lifetimes (no rekey), then with \`options:ipsec_salifetime=${SA_LIFETIME}s\`"
    echo "\`options:ipsec_rekeymargin=${REKEY_MARGIN}s\` on the ch1–ch2 tunnel port at both ends (ovn-controller of ch1 and ch2"
    echo "paused meanwhile, as it rewrites tunnel options) until ch1's ovnsecd logged $REKEY_COUNT Child SA rekeys"
    echo "(\"Child SA installed … event=rekeyed\"; both Child SAs of the tunnel, -in- and -out-). Lost datagrams: the"
    echo "iperf3 server's sequence gaps. Where packets ch1 → ch2 were lost comes from the OpenFlow counters of ovnsecd's"
    echo "rules on ovd-phy (into ch1's engine, ESP out of ch1, ESP into ch2's engine, out of ch2's engine); ESP engine"
    echo "drops by reason from \`tunnels/show\`; ovs-vswitchd's AF_PACKET socket drops per interface (\`ss -0 -m\`, skmem d);"
    echo "drops on the way to ovnsecd (TX dropped of the engine tap ovnsec0); vm2's UDP RcvbufErrors. All counters are"
    echo "differences over the period; the last column is what those overflows and drops on the path vm1 → vm2 leave"
    echo "unexplained (ping and reverse-direction packets share some of the counters, so it can be slightly negative);"
    echo "the last splits the lost datagrams by the server's 1 s intervals: those in which ch1 installed a rekeyed Child SA"
    echo "(\"N in M\": N lost over M intervals) and the others; CPU over the period as in row 2. Both periods run the same"
    echo "polling loop (ovnsecd's log every 0.25 s). Everything shares $(nproc) cores: compare within a run, not across runs."
    echo
    echo "| # | what | Mbit/s 1 stream [min–max] | TCP retransmits | ovs-vswitchd CPU % (ch1+ch2) | ovnsecd CPU % (ch1+ch2) | machine busy % | machine cores per Gbit/s | ping RTT ms |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    if [ -n "$FAIL2" ]; then
      echo "| 2 | OVN VM to VM, ipsec=false and ipsec=true | not measured: ${FAIL2//|//} | – | – | – | – | – | – |"
    else
      row2_line "OVN VM to VM, ipsec=false (Geneve)" "$cellp"
      row2_line "OVN VM to VM, ipsec=true (Geneve in ESP, AES-GCM-256, ovnsecd)" "$celli"
    fi
    echo
    echo "| # | period | seconds | UDP Mbit/s | Child SA rekeys (ch1 log · ch2 log) | datagrams lost / sent | pings lost / sent (10 ms) | ESP engine drops ch1 · ch2 | packets ch1→ch2 lost in ch1 engine · underlay · ch2 engine | ovs-vswitchd socket drops ch1 · ch2 | engine tap drops ch1 · ch2 | vm2 UDP receive-buffer drops | lost − overflows and engine drops on the path | datagrams lost in 1 s intervals with · without a rekey | CPU % ovnsecd · ovs-vswitchd (ch1+ch2) · machine busy |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    if [ -n "$FAIL5" ]; then
      echo "| 5 | rekey loss under load | not measured: ${FAIL5//|//} | – | – | – | – | – | – | – | – | – | – | – | – |"
    else
      local per
      for per in control rekey; do
        [ -n "${R5[$per,lost]:-}" ] || continue
        echo "| 5 | ${R5[$per,label]} | ${R5[$per,secs]} | $R5_RATE | ${R5[$per,rekeys]} | **${R5[$per,lost]}** / ${R5[$per,total]} | ${R5[$per,plost]} / ${R5[$per,psent]} | ${R5[$per,drops]} | ${R5[$per,stages]} | ${R5[$per,sock]} | ${R5[$per,tap]} | ${R5[$per,rcvbuf]} | $((R5[$per,lost] - R5[$per,accounted])) | ${R5[$per,byrekey]} | ${R5[$per,cpu]} |"
      done
    fi
    [ -z "$SWITCH_TIMES" ] || printf '\nipsec switch times (s, until every tunnel up/gone and vm1 reaches vm2): %s\n' "$SWITCH_TIMES"
    [ -z "$R5_PROBES" ] || printf '\nRow 5 rate probes (3 s each, datagrams lost/sent): %s%s\n' "$R5_PROBES" "${R5_NOTE:+ — $R5_NOTE}"
    echo
    echo "Goals (issue 8):"
    echo
    if [ -n "$ratio" ] && [ "$ratio" != – ]; then
      if awk -v v="$ratio" 'BEGIN { exit !(v >= 0.8) }'; then goals="**met**"; else goals="**not met**"; fi
      echo "- OVN path, ipsec=true ≥ 0.8× ipsec=false (1 stream): $goals (${ratio}×)"
    else
      echo "- OVN path, ipsec=true ≥ 0.8× ipsec=false (1 stream): not measured"
    fi
    if [ -z "$FAIL5" ] && [ -n "${R5[rekey,lost]:-}" ]; then
      local r5
      if [ "${R5[rekey,lost]}" = 0 ]; then r5="**met**"; else r5="**not met**"; fi
      echo "- 0 datagrams lost across $REKEY_COUNT Child SA rekeys under load: $r5 (${R5[rekey,lost]} of ${R5[rekey,total]} lost across ${R5[rekey,count]} rekeys, ${R5[rekey,accounted]} socket/queue overflows and ESP engine drops on the path; control without rekeys: ${R5[control,lost]} of ${R5[control,total]} lost, ${R5[control,accounted]} overflows and drops)"
    else
      echo "- 0 datagrams lost across $REKEY_COUNT Child SA rekeys under load: not measured"
    fi
  } >"$md"
  {
    local c
    for c in plain ipsec; do
      local cell
      if [ "$c" = plain ]; then cell=$cellp; else cell=$celli; fi
      if [ -n "$FAIL2" ] || [ "$cell" = none ]; then continue; fi
      # shellcheck disable=SC2086 # split the cell
      set -- $cell
      echo "figure ovn_${c}_mbps $1"
      echo "figure ovn_${c}_vswitchd_cpu_pct $5"
      echo "figure ovn_${c}_ovnsecd_cpu_pct $6"
      echo "figure ovn_${c}_machine_cores_per_gbps $(cores_per_gbps "$7" "$1")"
      echo "figure ovn_${c}_rtt_ms $8"
    done
    [ -z "$ratio" ] || echo "ratio ovn_ipsec_vs_plain $ratio"
    if [ -z "$FAIL5" ] && [ -n "${R5[rekey,lost]:-}" ]; then
      echo "figure rekey_lost_packets ${R5[rekey,lost]}"
      echo "figure rekey_count ${R5[rekey,count]}"
      echo "figure rekey_control_lost_packets ${R5[control,lost]}"
      echo "figure rekey_ping_lost ${R5[rekey,plost]}"
      echo "figure rekey_total_packets ${R5[rekey,total]}"
      echo "figure rekey_control_total_packets ${R5[control,total]}"
      echo "figure rekey_control_ping_lost ${R5[control,plost]}"
      echo "figure rekey_ping_sent ${R5[rekey,psent]}"
      echo "figure rekey_udp_mbps $R5_RATE"
      echo "figure rekey_seconds ${R5[rekey,secs]}"
      echo "figure rekey_path_overflows_and_drops ${R5[rekey,accounted]}"
      echo "figure rekey_control_path_overflows_and_drops ${R5[control,accounted]}"
    fi
  } | awk '$3 ~ /^[0-9]+([.][0-9]+)?$/' >"$figs"
  echo
  cat "$md"
  echo
  cat "$figs"
  if [ -n "${BENCH_OUT:-}" ]; then
    if [ -d "$BENCH_OUT" ]; then
      cp "$md" "$BENCH_OUT/ovn.md" && cp "$figs" "$BENCH_OUT/ovn.figures" && bench_log "wrote $BENCH_OUT/ovn.md and $BENCH_OUT/ovn.figures"
    else
      bench_log "BENCH_OUT=$BENCH_OUT is not a directory; wrote nothing there"
    fi
  fi
}

# --- the cluster ---------------------------------------------------------------
need=()
for c in ip iperf3 ping ss ethtool tcpdump openssl ovsdb-server ovs-vswitchd ovs-vsctl ovs-ofctl ovs-appctl \
  ovn-northd ovn-controller ovn-nbctl /usr/bin/python3; do
  command -v "$c" >/dev/null || need+=("$c")
done
if [ "${#need[@]}" -gt 0 ]; then
  bench_log "missing ${need[*]}: running scripts/install-deps.sh"
  scripts/install-deps.sh >&2 || fail "scripts/install-deps.sh failed; run it by hand to see why"
fi
if [ "${DEMO_SKIP_BUILD:-0}" != 1 ] && ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then
  fail "go not found (sudo resets PATH; run: sudo env PATH=\"\$PATH\" bench/ovn.sh)"
fi

exec 9>>/tmp/ovnsec-ovd.lock
if ! flock -n 9; then
  bench_log "waiting up to 15 min for /tmp/ovnsec-ovd.lock: another user has the ovd-* demo cluster ($(scripts/demo.sh who))"
  flock -w 900 9 || fail "/tmp/ovnsec-ovd.lock still held after 15 min ($(scripts/demo.sh who))"
fi
T_LOCKED=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_log "starting the demo cluster (scripts/demo.sh up, state $OVN_STATE)"
CLUSTER=1
OVD_LOCK_FD=9 DEMO_STATE=$OVN_STATE DEMO_SKIP_DEPS=1 scripts/demo.sh up >"$BENCH_WORK/demo.log" 2>&1 || {
  tail -n 5 "$BENCH_WORK/demo.log" | sed 's/^/    /' >&2
  fail "scripts/demo.sh up failed: $(grep -m1 'ERROR' "$BENCH_WORK/demo.log" | cut -c1-200)"
}
[ -f "$OVN_STATE/demo.env" ] || fail "scripts/demo.sh up wrote no $OVN_STATE/demo.env"
backend=$(sed -n 's/^OVNSECD_BACKEND="\([^"]*\)".*/\1/p' "$OVN_STATE/demo.env")
[ "$backend" = native ] || fail "ovnsecd runs the '$backend' backend, not native: nothing would be encrypted"
for n in 1 2; do
  for d in ovs-vswitchd ovnsecd ovn-controller; do
    p=$(ovn_pid "$n" "$d") || p=""
    if [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null; then fail "no running $d on ch$n"; fi
  done
done
bench_iperf_server ovd-vm2 || fail "iperf3 server in ovd-vm2 did not start"

# --- row 2 ---------------------------------------------------------------------
total=$((2 * BENCH_RUNS))
k=0
for r in $(seq "$BENCH_RUNS"); do
  for mode in false true; do
    k=$((k + 1))
    st=$(ovn_set_ipsec "$mode") || fail "ipsec=$mode: the switch did not complete (run $r)"
    SWITCH_TIMES+="${SWITCH_TIMES:+, }$mode $st"
    sleep 1
    rtt=$(bench_rtt ovd-vm1 "$(ovn_vm_ip 2)")
    [ "$mode" = true ] && c0=$(ovn_counters)
    if line=$(ovn_iperf_tcp "$BENCH_SECONDS"); then
      if [ "$mode" = true ]; then
        sleep 1.5
        c1=$(ovn_counters)
        # shellcheck disable=SC2086 # counters
        # ESP from ch1 reaching ch2's engine: ch1 sealed (with direct-to-NIC
        # output ch1's to-NIC flow counts nothing, so count at ch2).
        sealed=$(echo $c0 $c1 | awk '{print $7 - $3}')
        [ "${sealed:-0}" -gt 0 ] || fail "ipsec=true run $r: no ESP from ch1 reached ch2's engine (OpenFlow counters $c0 -> $c1)"
        RUNS_IPSEC+="true $line $rtt"$'\n'
      else
        RUNS_PLAIN+="false $line $rtt"$'\n'
      fi
    else
      line=failed
    fi
    bench_log "[$k/$total] ipsec=$mode run $r: $line $rtt (Mbit/s retransmits vswitchd% ovnsecd% busy% rtt_ms; switch ${st}s)"
  done
done
if [ -z "$RUNS_PLAIN" ] || [ -z "$RUNS_IPSEC" ]; then fail "every iperf3 run of one ipsec setting failed"; fi

# --- row 5 ---------------------------------------------------------------------
STAGE=5
[ "$(ovn_up_count)" = 6 ] || { st=$(ovn_set_ipsec true) || fail "ipsec=true for row 5 did not complete"; }
PORT1=$(ovn_tunnel_port 1 2)
PORT2=$(ovn_tunnel_port 2 1)
if [ -z "$PORT1" ] || [ -z "$PORT2" ]; then fail "no tunnel port between ch1 and ch2 (ch1: '$PORT1', ch2: '$PORT2')"; fi

for rate in "${RATES[@]}"; do
  ovn_udp_start "probe$rate" "$rate"
  sleep 3
  res=$(ovn_udp_stop "probe$rate") || fail "UDP probe at $rate Mbit/s failed"
  read -r lost tot _ _ <<<"$res"
  R5_PROBES+="${R5_PROBES:+, }$rate Mbit/s $lost/$tot"
  bench_log "probe $rate Mbit/s: $lost of $tot datagrams lost"
  R5_RATE=$rate
  [ "$lost" != 0 ] || break
done
[ "$lost" = 0 ] || R5_NOTE="every probe lost datagrams; the lowest rate is used"

# period TAG LABEL SECONDS|until-rekeys: one measured period into R5[TAG,*]
period() {
  local tag=$1 label=$2 how=$3 o0 o1 v0 v1 b0 b1 a0 a1 c0 c1 d10 d20 d11 d21 u0 u1 s10 s20 s11 s21 p10 p20 p11 p21 r10 r20 i0 t0 t1 res n deadline
  c0=$(ovn_counters) || fail "$tag: ovs-ofctl dump-flows failed"
  d10=$(ovn_engine_drops 1) d20=$(ovn_engine_drops 2) u0=$(ovn_udp_rcvbuf_errors ovd-vm2)
  s10=$(ovn_sock_drops 1) s20=$(ovn_sock_drops 2) p10=$(ovn_tap_drops 1) p20=$(ovn_tap_drops 2)
  r10=$(ovn_rekeys 1 "$PORT1") r20=$(ovn_rekeys 2 "$PORT2") i0=$(ovn_ike_sas 1 "$PORT1")
  o0=$(bench_ticks "$(ovn_pid 1 ovnsecd)" "$(ovn_pid 2 ovnsecd)") v0=$(bench_ticks "$(ovn_pid 1 ovs-vswitchd)" "$(ovn_pid 2 ovs-vswitchd)")
  read -r b0 a0 < <(bench_busy)
  t0=$(date +%s.%N)
  ovn_udp_start "$tag" "$R5_RATE"
  # Both periods poll the same way (the control only to cost the same CPU).
  if [ "$how" = until-rekeys ]; then
    deadline=$(($(date +%s) + REKEY_COUNT * 3 + 30))
  else
    deadline=$(($(date +%s) + how))
  fi
  while :; do
    n=$(($(ovn_rekeys 1 "$PORT1") - r10))
    [ "$how" != until-rekeys ] || [ "$n" -lt "$REKEY_COUNT" ] || break
    if [ "$(date +%s)" -ge "$deadline" ]; then
      [ "$how" != until-rekeys ] || R5_NOTE+="${R5_NOTE:+; }only $n of $REKEY_COUNT rekeys within $((REKEY_COUNT * 3 + 30)) s"
      break
    fi
    kill -0 "$OVN_UDP_CLIENT" 2>/dev/null || break
    sleep 0.25
  done
  [ "$how" != until-rekeys ] || sleep 0.5 # the last rekey's switch-over under load belongs to the period
  o1=$(bench_ticks "$(ovn_pid 1 ovnsecd)" "$(ovn_pid 2 ovnsecd)") v1=$(bench_ticks "$(ovn_pid 1 ovs-vswitchd)" "$(ovn_pid 2 ovs-vswitchd)")
  read -r b1 a1 < <(bench_busy)
  t1=$(date +%s.%N)
  R5[$tag,cpu]=$(awk -v o="$((o1 - o0))" -v v="$((v1 - v0))" -v hz="$(getconf CLK_TCK)" -v t0="$t0" -v t1="$t1" -v b="$((b1 - b0))" -v a="$((a1 - a0))" -v n="$(nproc)" \
    'BEGIN { printf "%.0f · %.0f · %.0f", o / hz / (t1 - t0) * 100, v / hz / (t1 - t0) * 100, b / (a > 0 ? a : 1) * 100 * n }')
  res=$(ovn_udp_stop "$tag") || fail "$tag period: iperf3 UDP failed"
  sleep 2 # OpenFlow counters follow the data path within a revalidator pass
  c1=$(ovn_counters) || fail "$tag: ovs-ofctl dump-flows failed"
  d11=$(ovn_engine_drops 1) d21=$(ovn_engine_drops 2) u1=$(ovn_udp_rcvbuf_errors ovd-vm2)
  s11=$(ovn_sock_drops 1) s21=$(ovn_sock_drops 2) p11=$(ovn_tap_drops 1) p21=$(ovn_tap_drops 2)
  read -r "R5[$tag,lost]" "R5[$tag,total]" "R5[$tag,plost]" "R5[$tag,psent]" <<<"$res"
  R5[$tag,label]=$label
  R5[$tag,byrekey]=$(ovn_loss_by_rekey "$tag" 1 "$PORT1" | awk '{printf "%d in %d · %d in %d", $1, $2, $3, $4}') || R5[$tag,byrekey]="?"
  R5[$tag,secs]=$(echo "$t1 $t0" | awk '{printf "%.1f", $1 - $2}')
  R5[$tag,count]=$(($(ovn_rekeys 1 "$PORT1") - r10))
  R5[$tag,rekeys]="${R5[$tag,count]} · $(($(ovn_rekeys 2 "$PORT2") - r20))"
  n=$(($(ovn_ike_sas 1 "$PORT1") - i0))
  [ "$n" = 0 ] || R5[$tag,rekeys]+=" (+$n IKE SA)"
  R5[$tag,drops]="$(ovn_drops_diff "$d10" "$d11") · $(ovn_drops_diff "$d20" "$d21")"
  # shellcheck disable=SC2086 # counters
  # With direct-to-NIC output ch1's to-NIC flow stays at 0: ch1's engine
  # and the underlay are then one stage.
  R5[$tag,stages]=$(echo $c0 $c1 | awk '{
    if ($6 - $2 == 0 && $7 - $3 > 0) printf "%d (ch1 engine + underlay, direct output) · %d (%d into ch1 engine)", ($5-$1)-($7-$3), ($7-$3)-($8-$4), $5-$1
    else printf "%d · %d · %d (%d into ch1 engine)", ($5-$1)-($6-$2), ($6-$2)-($7-$3), ($7-$3)-($8-$4), $5-$1 }')
  R5[$tag,sock]="$(ovn_drops_diff "$s10" "$s11") · $(ovn_drops_diff "$s20" "$s21")"
  R5[$tag,tap]="$((p11 - p10)) · $((p21 - p20))"
  R5[$tag,rcvbuf]=$((u1 - u0))
  # Overflows on the path vm1 -> vm2 (ch1: vm1's port and the engine's
  # return; ch2: the NIC and the engine's return), the engine taps, vm2's
  # socket, and the ESP engine's own drops: what explains the lost datagrams.
  R5[$tag,accounted]=$(printf '%s\n' "$(ovn_drops_diff "$s10" "$s11")" | ovn_sum_plus ovd-vm1p ovnsec0)
  R5[$tag,accounted]=$((R5[$tag,accounted] + $(printf '%s\n' "$(ovn_drops_diff "$s20" "$s21")" | ovn_sum_plus ovd-eth ovnsec0)))
  R5[$tag,accounted]=$((R5[$tag,accounted] + $(printf '%s %s\n' "$(ovn_drops_diff "$d10" "$d11")" "$(ovn_drops_diff "$d20" "$d21")" | ovn_sum_plus)))
  R5[$tag,accounted]=$((R5[$tag,accounted] + p11 - p10 + p21 - p20 + u1 - u0))
  bench_log "$tag: ${R5[$tag,secs]} s at $R5_RATE Mbit/s: ${R5[$tag,lost]} of ${R5[$tag,total]} datagrams lost, pings ${R5[$tag,plost]}/${R5[$tag,psent]} lost, rekeys ${R5[$tag,rekeys]}, engine drops ${R5[$tag,drops]}, lost ch1 engine · underlay · ch2 engine: ${R5[$tag,stages]}; vswitchd socket drops ${R5[$tag,sock]}; engine tap drops ${R5[$tag,tap]}; vm2 UDP rcvbuf drops ${R5[$tag,rcvbuf]}; overflows and engine drops on the path: ${R5[$tag,accounted]}; lost in 1 s intervals with · without a rekey: ${R5[$tag,byrekey]}; CPU % ovnsecd · ovs-vswitchd (ch1+ch2) · machine busy: ${R5[$tag,cpu]}"
}

# The control period lasts about as long as REKEY_COUNT rekeys will take
# (two Child SAs, each rekeyed about every SA_LIFETIME - REKEY_MARGIN s).
CONTROL_SECS=$(((REKEY_COUNT * (SA_LIFETIME - REKEY_MARGIN) + 1) / 2))
[ "$CONTROL_SECS" -ge 5 ] || CONTROL_SECS=5
bench_log "control: $CONTROL_SECS s of UDP at $R5_RATE Mbit/s + 10 ms ping, default lifetimes"
period control "control: default lifetimes, no rekey" "$CONTROL_SECS"

bench_log "short lifetimes on $PORT1 (ch1) and $PORT2 (ch2); pausing ovn-controller on ch1 and ch2"
for n in 1 2; do
  p=$(ovn_pid "$n" ovn-controller)
  kill -STOP "$p" || fail "SIGSTOP ovn-controller on ch$n failed"
  STOPPED+=("$p")
done
opts=("options:ipsec_salifetime=${SA_LIFETIME}s" "options:ipsec_rekeymargin=${REKEY_MARGIN}s")
ovn_vsctl 1 set Interface "$PORT1" "${opts[@]}" || fail "ovs-vsctl set Interface $PORT1 on ch1 failed"
ovn_vsctl 2 set Interface "$PORT2" "${opts[@]}" || fail "ovs-vsctl set Interface $PORT2 on ch2 failed"
short_lifetimes_up() {
  local n out
  for n in 1 2; do
    out=$(ovn_show "$n" 2>/dev/null) || { echo no; return; }
    grep -q "'salifetime': '${SA_LIFETIME}s'" <<<"$out" || { echo no; return; }
  done
  if [ "$(ovn_up_count)" = 6 ]; then echo yes; else echo no; fi
}
ovn_wait 60 yes short_lifetimes_up || fail "the ch1-ch2 tunnel was not up with the short lifetimes 60 s after setting them"
bench_wait_ping ovd-vm1 "$(ovn_vm_ip 2)" || fail "vm1 does not reach vm2 with the short lifetimes"
bench_log "rekey period: UDP at $R5_RATE Mbit/s + 10 ms ping until $REKEY_COUNT Child SA rekeys on ch1"
period rekey "rekeys: salifetime ${SA_LIFETIME}s, rekeymargin ${REKEY_MARGIN}s" until-rekeys
exit 0
