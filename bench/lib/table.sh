# shellcheck shell=bash disable=SC2004 # C and RUNS_OF are associative arrays the caller declares
# table.sh: aggregation and formatting for bench/run.sh. A run line is
# "mbps retransmits tunnel% busy%" (tunnel% is "-" without tunnel
# processes); a cell is what the table shows for one system and stream
# count. Needs the associative arrays RUNS_OF (system,streams -> run lines)
# and C (system,streams -> cell) and the array STREAMS. Pure: no side
# effects besides those arrays; tested by bench/lib/table_test.sh.

# bench_cell: run lines on stdin -> "mbps min max rtx tun busy n": the run
# with the median throughput gives every column (the lower median for an
# even count); min and max are over all runs; "none" without any run.
# Lines that are not four fields (failed runs) are ignored.
bench_cell() {
  sort -n -k1,1 | awk '
    NF == 4 && $1 ~ /^[0-9.]+$/ { n++; m[n] = $0; v[n] = $1 }
    END {
      if (n == 0) { print "none"; exit }
      split(m[int((n + 1) / 2)], c, " ")
      print c[1], v[1], v[n], c[2], c[3], c[4], n
    }'
}

# bench_div FORMAT A B [SCALE]: A*SCALE/B formatted, "–" when B is 0.
bench_div() {
  awk -v f="$1" -v a="$2" -v b="$3" -v s="${4:-1}" 'BEGIN { if (b + 0 == 0) print "–"; else printf f "\n", a * s / b }'
}

bench_aggregate() { # fill C from RUNS_OF for the given systems
  local s p
  for s in "$@"; do
    for p in "${STREAMS[@]}"; do C[$s,$p]=$(printf '%s' "${RUNS_OF[$s,$p]:-}" | bench_cell); done
  done
}

has() { [ -n "${C[$1,$2]:-}" ] && [ "${C[$1,$2]}" != none ]; }
field() { # field S P N: the Nth column of a cell
  local i=$3
  # shellcheck disable=SC2086 # split the cell into its columns
  set -- ${C[$1,$2]}
  shift "$((i - 1))"
  echo "$1"
}

gbps() { bench_div '%.2f' "$1" 1000; }
# fmt_tput S P: "**17.50** [16.90–17.60]" (Gbit/s, median [min–max])
fmt_tput() {
  if has "$1" "$2"; then
    printf '**%s** [%s–%s]' "$(gbps "$(field "$1" "$2" 1)")" "$(gbps "$(field "$1" "$2" 2)")" "$(gbps "$(field "$1" "$2" 3)")"
  else
    printf 'failed'
  fi
}
pair() { # pair S FIELD FORMATTER: "x · y" over the stream counts
  local out=() p v
  for p in "${STREAMS[@]}"; do
    if has "$1" "$p"; then v=$(field "$1" "$p" "$2"); out+=("$("$3" "$v" "$1" "$p")"); else out+=("–"); fi
  done
  local IFS=$'\x1f'
  local joined="${out[*]}"
  printf '%s' "${joined//$'\x1f'/ · }"
}
as_is() { if [ "$1" = - ]; then echo –; else echo "$1"; fi; }
vs_veth() { # VALUE S P: throughput of S over plain veth's, same streams
  if has veth "$3"; then bench_div '%.3f' "$(field "$2" "$3" 1)" "$(field veth "$3" 1)"; else echo –; fi
}
cores_per_gbps() { # VALUE S P: tunnel CPU (cores) per Gbit/s of receiver throughput
  local t
  t=$(field "$2" "$3" 5)
  if [ "$t" = - ]; then echo –; else bench_div '%.2f' "$t" "$(field "$2" "$3" 1)" 10; fi
}
machine_per_gbps() { # BUSY S P: machine busy (cores) per Gbit/s
  bench_div '%.2f' "$1" "$(field "$2" "$3" 1)" 10
}
