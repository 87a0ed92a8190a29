#!/usr/bin/env bash
# run.sh: the ovnsec benchmark, one command. Measures tunnel throughput
# between two network namespaces over a veth pair (iperf3 TCP, 1 and 4
# streams, receiver side, median of BENCH_RUNS runs of BENCH_SECONDS) for
# plain veth, ovnsec ESP over TUN (cmd/ovnsec-esp), wireguard-go and
# strongSwan charon + kernel-libipsec, with the CPU of the tunnel processes
# (/proc/<pid>/stat over each run) and CPU per Gbit/s. It prints one table
# and one machine-readable line per figure ("figure <name> <value>",
# "ratio <name> <value>"), and rewrites docs/PERFORMANCE.md and the plot
# docs/PERFORMANCE-throughput.svg.
#
# Rows 2-5 come from their own scripts, run after row 1 with BENCH_OUT set
# so that each leaves a markdown section and its figure lines:
# bench/ovn.sh (2: OVN path, 5: rekey loss), bench/ike.sh (3: IKE rate),
# bench/mesh.sh (4: mesh scale). Each also runs on its own.
#
# Usage: sudo bench/run.sh
# Knobs (environment):
#   BENCH_ROWS     subset of "1 2 3 4" (default all; 2 includes row 5)
#   BENCH_SECONDS  seconds per iperf3 run (default 10)
#   BENCH_RUNS     runs per cell, the median is reported (default 3)
#   BENCH_SYSTEMS  subset of "veth esptun wggo sslib" (default all)
#   BENCH_DOC      output document (default docs/PERFORMANCE.md; "-" = none)
#   BENCH_CACHE    where wireguard-go is built (default /tmp/ovnsec-bench-cache)
#   BENCH_KEEP     1: keep the work directory (logs, configs) for debugging
# Quick run: sudo BENCH_SECONDS=3 BENCH_RUNS=1 bench/run.sh
#
# Runs are interleaved (run 1 of every system, then run 2, ...) and all
# tunnels stay up for the whole bench, so that load from other processes on
# the machine hits every system alike. Namespaces are bnch-<tag>-a/b, veths
# bnch<tag>a/b, underlay 198.51.100.0/24, inner 203.0.113.0/24. Everything
# created is removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_SYSTEMS=${BENCH_SYSTEMS:-veth esptun wggo sslib}
BENCH_ROWS=${BENCH_ROWS:-1 2 3 4}
BENCH_DOC=${BENCH_DOC:-docs/PERFORMANCE.md}
BENCH_CACHE=${BENCH_CACHE:-/tmp/ovnsec-bench-cache}
STREAMS=(1 4)

case "$BENCH_SECONDS" in '' | *[!0-9]* | 0) echo "bench: BENCH_SECONDS=$BENCH_SECONDS: want a whole number of seconds >= 1" >&2; exit 2 ;; esac
case "$BENCH_RUNS" in '' | *[!0-9]* | 0) echo "bench: BENCH_RUNS=$BENCH_RUNS: want a whole number >= 1" >&2; exit 2 ;; esac
read -r -a SYSTEMS <<<"$BENCH_SYSTEMS"
read -r -a ROWS <<<"$BENCH_ROWS"
for r in "${ROWS[@]}"; do
  case "$r" in 1 | 2 | 3 | 4) ;; *) echo "bench: BENCH_ROWS: unknown row $r (want 1 2 3 4; row 5 runs with 2)" >&2; exit 2 ;; esac
done
row_on() { [[ " ${ROWS[*]} " == *" $1 "* ]]; }
row_on 1 || SYSTEMS=()
for s in "${SYSTEMS[@]}"; do
  case "$s" in veth | esptun | wggo | sslib) ;; *) echo "bench: BENCH_SYSTEMS: unknown system $s (want veth esptun wggo sslib)" >&2; exit 2 ;; esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (network namespaces, TUN, apt)" >&2; exit 1; }

for f in bench/lib/common.sh bench/lib/table.sh bench/lib/veth.sh bench/lib/ovnsec.sh bench/lib/wireguard.sh bench/lib/strongswan.sh; do
  # shellcheck source=/dev/null
  . "$f"
done

# Machine-readable names of the systems, and the order of the table.
declare -A KEY=([veth]=veth [esptun]=esp_tun [wggo]=wireguard_go [sslib]=strongswan_libipsec)
declare -A SYS_NS SYS_SRC SYS_DST SYS_PIDS SYS_NOTE SYS_DETAIL SYS_FAIL SYS_RTT RUNS_OF

BENCH_WORK=$(mktemp -d /tmp/bnch-run.XXXXXX)
trap 'bench_cleanup; if [ "${BENCH_KEEP:-0}" = 1 ]; then bench_log "kept $BENCH_WORK"; else rm -rf "$BENCH_WORK"; fi' EXIT
trap 'bench_log "interrupted, cleaning up"; exit 130' INT TERM

COMMAND="BENCH_SECONDS=$BENCH_SECONDS BENCH_RUNS=$BENCH_RUNS"
[ "$BENCH_SYSTEMS" = "veth esptun wggo sslib" ] || COMMAND+=" BENCH_SYSTEMS=\"$BENCH_SYSTEMS\""
[ "$BENCH_ROWS" = "1 2 3 4" ] || COMMAND+=" BENCH_ROWS=\"$BENCH_ROWS\""
COMMAND+=" bench/run.sh"
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

bench_install_deps
bench_log "building bench/plot"
go build -o "$BENCH_WORK/plot" ./bench/plot || bench_die "go build ./bench/plot failed"

# --- bring every tunnel up ----------------------------------------------
UP=()
for s in "${SYSTEMS[@]}"; do
  bench_log "starting ${s}"
  if "start_$s" && [ -z "${SYS_FAIL[$s]:-}" ]; then
    UP+=("$s")
    SYS_RTT[$s]=$(bench_rtt "${SYS_NS[$s]}" "${SYS_DST[$s]}")
  else
    : "${SYS_FAIL[$s]:=failed to start (see messages above)}"
    bench_log "$s: ${SYS_FAIL[$s]}"
  fi
done

# --- measure, interleaved -------------------------------------------------
total=$((BENCH_RUNS * ${#STREAMS[@]} * ${#UP[@]}))
n=0
for r in $(seq "$BENCH_RUNS"); do
  for p in "${STREAMS[@]}"; do
    for s in "${UP[@]}"; do
      n=$((n + 1))
      # shellcheck disable=SC2086 # SYS_PIDS is a list of pids
      if line=$(bench_iperf "${SYS_NS[$s]}" "${SYS_SRC[$s]}" "${SYS_DST[$s]}" "$p" "$BENCH_SECONDS" ${SYS_PIDS[$s]}); then
        RUNS_OF[$s,$p]+="$line"$'\n'
      else
        line="failed"
      fi
      bench_log "[$n/$total] $s P$p run $r: $line (Mbit/s retransmits tunnel% busy%)"
    done
  done
done

# A tunnel process that died during the bench is a finding, not a detail.
for s in "${UP[@]}"; do
  for pid in ${SYS_PIDS[$s]}; do
    if ! kill -0 "$pid" 2>/dev/null; then
      SYS_NOTE[$s]+="; a tunnel process (pid $pid) exited during the bench"
      bench_log "$s: tunnel process $pid exited during the bench"
    fi
  done
done

# Optional stop_<system> hooks end a system early to collect its counters.
for s in "${UP[@]}"; do
  if declare -F "stop_$s" >/dev/null; then "stop_$s" || bench_log "stop_$s failed"; fi
done

# --- aggregate ------------------------------------------------------------
# shellcheck disable=SC2034 # C is read by bench/lib/table.sh
declare -A C
bench_aggregate "${UP[@]}"

TABLE=$BENCH_WORK/table.md
{
  echo "| # | system | cipher | Gbit/s 1 stream [min–max] | Gbit/s 4 streams [min–max] | ÷ plain veth (1 · 4) | tunnel CPU % (1 · 4) | tunnel cores per Gbit/s (1 · 4) | machine busy % (1 · 4) | machine cores per Gbit/s (1 · 4) | TCP retransmits (1 · 4) | ping RTT ms | notes |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  for s in "${SYSTEMS[@]}"; do
    name_var="${s}_NAME" cipher_var="${s}_CIPHER"
    if [ -n "${SYS_FAIL[$s]:-}" ]; then
      echo "| 1 | ${!name_var} | ${!cipher_var} | ${SYS_FAIL[$s]//|//} | – | – | – | – | – | – | – | – | nothing measured (BENCH_KEEP=1 keeps the logs) |"
      continue
    fi
    echo "| 1 | ${!name_var} | ${!cipher_var} | $(fmt_tput "$s" 1) | $(fmt_tput "$s" 4) | $(pair "$s" 1 vs_veth) | $(pair "$s" 5 as_is) | $(pair "$s" 1 cores_per_gbps) | $(pair "$s" 6 as_is) | $(pair "$s" 6 machine_per_gbps) | $(pair "$s" 4 as_is) | ${SYS_RTT[$s]:-–} | ${SYS_NOTE[$s]:-} |"
  done
} >"$TABLE"
DETAILS=$BENCH_WORK/details.md
for s in "${SYSTEMS[@]}"; do
  name_var="${s}_NAME"
  if [ -n "${SYS_DETAIL[$s]:-}" ]; then echo "- ${!name_var}: ${SYS_DETAIL[$s]}"; fi
done >"$DETAILS"

FIGURES=$BENCH_WORK/figures.txt
{
  for s in "${UP[@]}"; do
    for p in "${STREAMS[@]}"; do
      has "$s" "$p" || continue
      sfx=$([ "$p" = 1 ] && echo "" || echo "_${p}streams")
      echo "figure ${KEY[$s]}_mbps$sfx $(field "$s" "$p" 1)"
      v=$(cores_per_gbps x "$s" "$p")
      [ "$v" = – ] || echo "figure ${KEY[$s]}_tunnel_cores_per_gbps$sfx $v"
      echo "figure ${KEY[$s]}_machine_cores_per_gbps$sfx $(machine_per_gbps "$(field "$s" "$p" 6)" "$s" "$p")"
    done
    echo "figure ${KEY[$s]}_rtt_ms ${SYS_RTT[$s]:-}"
  done
  for p in "${STREAMS[@]}"; do
    has esptun "$p" || continue
    sfx=$([ "$p" = 1 ] && echo "" || echo "_${p}streams")
    for o in veth wggo sslib; do
      if has "$o" "$p"; then
        echo "ratio esp_tun_vs_${KEY[$o]}$sfx $(bench_div '%.3f' "$(field esptun "$p" 1)" "$(field "$o" "$p" 1)")"
      fi
    done
  done
} | awk '$3 ~ /^[0-9]+([.][0-9]+)?$/' >"$FIGURES" # a figure is a number or is left out

echo
cat "$TABLE"
echo
echo "(iperf3 TCP, receiver side, median of $BENCH_RUNS x ${BENCH_SECONDS}s; tunnel CPU = both tunnel processes, % of one core; machine busy out of $(($(nproc) * 100))%)"
cat "$DETAILS"
cat "$FIGURES"

# --- goals (issue 8): ovnsec ESP over TUN >= 1.5x wireguard-go, >= 4x libipsec, 1 stream
GOALS=""
goal() { # goal SYSTEM MIN
  local v name_var="${1}_NAME"
  local what="ovnsec ESP over TUN ≥ $2× ${!name_var} (1 stream)"
  v=$(awk -v k="ratio esp_tun_vs_${KEY[$1]}" '$1 " " $2 == k {print $3}' "$FIGURES")
  if [ -z "$v" ]; then
    GOALS+="- $what: not measured"$'\n'
  elif awk -v v="$v" -v m="$2" 'BEGIN { exit !(v >= m) }'; then
    GOALS+="- $what: **met** (${v}×)"$'\n'
  else
    GOALS+="- $what: **not met** (${v}×)"$'\n'
  fi
}
if row_on 1; then
  goal wggo 1.5
  goal sslib 4
  printf '\n%s' "$GOALS"
fi

# --- rows 2-5: their own scripts, one after the other ----------------------
ROWS_OUT=$BENCH_WORK/rows
mkdir -p "$ROWS_OUT"
# run_row NAME LABEL: bench/NAME.sh with BENCH_OUT; its section goes to
# $ROWS_OUT/NAME.md (a "not measured" one if it left none), its figure lines
# are appended to $FIGURES and printed.
run_row() {
  local name=$1 label=$2 script="bench/$1.sh" log="$BENCH_WORK/$1.log" why=""
  bench_log "row $label: $script (log: $log)"
  if [ ! -f "$script" ]; then
    why="$script does not exist in this tree"
  elif ! BENCH_SECONDS=$BENCH_SECONDS BENCH_RUNS=$BENCH_RUNS BENCH_OUT=$ROWS_OUT bash "$script" >"$log" 2>&1; then
    why="$script failed: $(grep -v '^[[:space:]]*$' "$log" | tail -n 1)"
    bench_log "$why"
    tail -n 20 "$log" >&2
  fi
  if [ -n "$why" ] && [ ! -s "$ROWS_OUT/$name.md" ]; then
    printf '### Row %s\n\nnot measured: %s\n' "$label" "${why//|//}" >"$ROWS_OUT/$name.md"
  fi
  echo
  cat "$ROWS_OUT/$name.md"
  if [ -f "$ROWS_OUT/$name.figures" ]; then
    awk '$1 ~ /^(figure|ratio)$/ && $3 ~ /^[0-9]+([.][0-9]+)?$/' "$ROWS_OUT/$name.figures" | tee -a "$FIGURES"
  fi
}
ROW_SECTIONS=()
if row_on 2; then run_row ovn "2 and 5" && ROW_SECTIONS+=("$ROWS_OUT/ovn.md"); fi
if row_on 3; then run_row ike 3 && ROW_SECTIONS+=("$ROWS_OUT/ike.md"); fi
if row_on 4; then run_row mesh 4 && ROW_SECTIONS+=("$ROWS_OUT/mesh.md"); fi

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_WARNING=""
# The load after the run includes the bench itself; only the load before
# says whether other work was competing.
if awk -v a="${LOAD_BEFORE%% *}" -v n="$(nproc)" 'BEGIN { exit !(a > n) }'; then
  BUSY_WARNING="**Warning:** the 1-minute load average before the run (${LOAD_BEFORE%% *}) was above the number of cores ($(nproc)): other work competed for the CPU during this run, so the absolute figures are lower than on a quiet machine and the ratios are less certain."
  bench_log "${BUSY_WARNING//\*/}"
fi
[ "$BENCH_DOC" = - ] && exit 0

# --- plot and document ----------------------------------------------------
SVG="${BENCH_DOC%.md}-throughput.svg"
{
  for s in "${UP[@]}"; do
    name_var="${s}_NAME"
    for p in "${STREAMS[@]}"; do
      if has "$s" "$p"; then
        printf '%s\t%s\t%s\n' "${!name_var}" "$p stream$([ "$p" = 1 ] || echo s)" "$(gbps "$(field "$s" "$p" 1)")"
      fi
    done
  done
  # Row 2 (VM to VM through OVN, 1 stream) when it was measured.
  for k in plain ipsec; do
    v=$(awk -v k="figure ovn_${k}_mbps" '$1 " " $2 == k {print $3}' "$FIGURES")
    [ -z "$v" ] || printf 'OVN path, ipsec=%s\t1 stream\t%s\n' "$([ $k = plain ] && echo false || echo true)" "$(gbps "$v")"
  done
} >"$BENCH_WORK/plot.tsv"
if [ -s "$BENCH_WORK/plot.tsv" ]; then
  "$BENCH_WORK/plot" -title "TCP throughput through the tunnel, Gbit/s (iperf3, median of $BENCH_RUNS x ${BENCH_SECONDS}s)" \
    <"$BENCH_WORK/plot.tsv" >"$BENCH_WORK/plot.svg" || bench_die "bench/plot failed"
fi

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
cpu_flags=$(grep -m 1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -x -E 'aes|pclmulqdq|avx2|avx512f|vaes|vpclmulqdq' | paste -s -d ' ' -)
mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
wggo_sum=$(go version -m "$BENCH_CACHE/bin/wireguard" 2>/dev/null | awk '$1 == "mod" {print $3} $1 == "dep" && $2 == "golang.org/x/crypto" {print "(golang.org/x/crypto " $3 ")"}' | paste -s -d ' ' -)
tree=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- cmd/ovnsec-esp internal/datapath/tun internal/esp 2>/dev/null | wc -l)
[ "$dirty" -eq 0 ] || tree+=" plus uncommitted changes in cmd/ovnsec-esp, internal/datapath/tun or internal/esp ($dirty paths)"
DOC_TMP=$BENCH_WORK/doc.md
cat >"$DOC_TMP" <<EOF
# ovnsec performance

Generated by \`bench/run.sh\`; do not edit by hand, run the script again. Every figure below
was measured in the run described here; nothing is carried over from other runs.

| | |
| --- | --- |
| date | $STARTED |
| command | \`sudo $COMMAND\` |
| machine | $cpu_model, $(nproc) cores ($cpu_flags), $mem |
| kernel | $(uname -r) |
| load average | $LOAD_BEFORE before, $LOAD_AFTER after the run (1/5/15 min; "after" includes the bench itself) |
| ovnsec tree | $tree |
| Go | $(go version | awk '{print $3, $4}') |
| iperf3 | $(dpkg-query -W -f='${Version}' iperf3 2>/dev/null) |
| strongSwan | $(dpkg-query -W -f='${Version}' strongswan-charon 2>/dev/null) (Debian charon, kernel-libipsec) |
| wireguard-go | golang.zx2c4.com/wireguard ${wggo_sum:-$WGGO_VERSION}, wg from wireguard-tools $(dpkg-query -W -f='${Version}' wireguard-tools 2>/dev/null) |

## Results

${BUSY_WARNING:+$BUSY_WARNING

}### Row 1: tunnel throughput between two namespaces

$(if row_on 1; then
  cat "$TABLE"
  echo
  [ -s "$DETAILS" ] && printf 'Counters at the end of the run:\n\n%s\n\n' "$(cat "$DETAILS")"
  echo "![TCP throughput per system, 1 and 4 streams]($(basename "$SVG"))"
  echo
  echo "Goals (issue 8, 1 stream, same run):"
  echo
  printf '%s' "$GOALS"
else
  echo "not run (BENCH_ROWS=\"$BENCH_ROWS\")"
fi)

$(for f in "${ROW_SECTIONS[@]}"; do cat "$f"; echo; done)

Machine-readable lines printed by the script:

\`\`\`
$(cat "$FIGURES")
\`\`\`

## How it is measured

- Row 1: two network namespaces per system (\`bnch-<tag>-a\`, \`bnch-<tag>-b\`) joined by a veth pair,
  underlay 198.51.100.0/24, inner addresses 203.0.113.0/24. The iperf3 client runs in \`a\`, the server
  in \`b\`. TCP, ${BENCH_SECONDS} s per run, 1 and 4 parallel streams, throughput on the receiver side.
  Each cell is the median of ${BENCH_RUNS} run(s) with the min–max range in brackets; the other columns
  come from the run with the median throughput.
- All tunnels are brought up first and stay up; the runs are interleaved (run 1 of every system, then
  run 2, …) so that other load on the machine hits every system alike.
- **tunnel CPU %**: utime+stime of both tunnel processes (\`/proc/<pid>/stat\`, all threads) over the
  run, in % of one core. **tunnel cores per Gbit/s** = tunnel CPU / 100 / receiver Gbit/s.
  Plain veth has no tunnel process. **machine busy %**: busy time of the whole machine from
  \`/proc/stat\` over the run, out of $(($(nproc) * 100))%; it includes both iperf3 ends, the kernel
  TCP stack and anything else running on the machine, so **machine cores per Gbit/s** is the only
  CPU figure that compares with the veth row.
- ping RTT: average of 50 pings 10 ms apart through the idle tunnel, before the runs.
- Systems: **plain veth** (kernel TSO/GRO, no tunnel); **ovnsec ESP over TUN**: \`cmd/ovnsec-esp\`
  at both ends, tunnel-mode ESP-in-UDP (port 4500) over a TUN device, static test keys, no IKE;
  **wireguard-go** built with \`go install golang.zx2c4.com/wireguard@$WGGO_VERSION\` into
  \`$BENCH_CACHE/bin\` and configured with \`wg\`; **strongSwan charon + kernel-libipsec**:
  userspace ESP on the TUN \`ipsec0\`, tunnel mode, ESP-in-UDP (\`encap = yes\`), AES-GCM-16-256
  (aesni plugin), IKEv2 PSK with aes256gcm16-prfsha256-x25519. kernel-libipsec is loaded before
  kernel-netlink (\`load_modular = no\`: the first kernel-ipsec registered wins); the kernel here has
  no ESP (\`CONFIG_INET_ESP\` off), so kernel IPsec cannot be measured.
- Rows 2–5: see each row's section above for how it was measured (bench/ovn.sh, bench/ike.sh,
  bench/mesh.sh; each runs on its own as well).

## Reading the numbers

Every test runs both tunnel ends, the iperf3 client and server and the kernel TCP stack on the same
$(nproc) cores, so the results are CPU-bound whole-machine numbers, not per-gateway capacity. The
machine is shared with other work (see the load average above); single runs vary by 20% or more,
so compare systems by the ratios of the same run, not across runs.
EOF
mkdir -p "$(dirname "$BENCH_DOC")"
[ -s "$BENCH_WORK/plot.svg" ] && cp "$BENCH_WORK/plot.svg" "$SVG"
cp "$DOC_TMP" "$BENCH_DOC"
bench_log "wrote $BENCH_DOC and $SVG"
