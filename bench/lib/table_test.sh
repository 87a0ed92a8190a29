#!/usr/bin/env bash
# table_test.sh: table-driven tests of bench/lib/table.sh (aggregation and
# formatting) and of bench/run.sh's knob checks. No root, no network.
# Usage: bash bench/lib/table_test.sh      (exit status 0 = all passed)
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib/table.sh

fails=0
check() { # check NAME GOT WANT
  if [ "$2" != "$3" ]; then
    printf 'FAIL %s\n  got:  %q\n  want: %q\n' "$1" "$2" "$3"
    fails=$((fails + 1))
  else
    printf 'ok   %s\n' "$1"
  fi
}

# bench_cell: input lines (\n-separated) -> cell
while IFS='|' read -r name in want; do
  check "cell/$name" "$(printf '%b' "$in" | bench_cell)" "$want"
done <<'CASES'
three runs, median in the middle|900 10 80 150\n2400 0 160 170\n1800 5 120 160\n|1800 900 2400 5 120 160 3
one run|17500 3 - 130\n|17500 17500 17500 3 - 130 1
even count takes the lower median|4 0 1 1\n1 0 1 1\n3 0 1 1\n2 0 1 1\n|2 1 4 0 1 1 4
failed runs are ignored|failed\n500 1 50 100\n|500 500 500 1 50 100 1
nothing|\n|none
only failures|failed\nfailed\n|none
numeric not lexical order|9 0 1 1\n10 0 1 1\n100 0 1 1\n|10 9 100 0 1 1 3
CASES

# bench_div FORMAT A B SCALE
while IFS='|' read -r name f a b sc want; do
  check "div/$name" "$(bench_div "$f" "$a" "$b" "$sc")" "$want"
done <<'CASES'
ratio|%.3f|2430|880|1|2.761
gbps|%.2f|17500|1000|1|17.50
cores per gbps|%.2f|165|2430|10|0.68
zero divisor|%.2f|1|0|1|–
CASES

# formatting on a filled table
STREAMS=(1 4)
declare -A C=(
  [veth,1]="17500 16900 17600 0 - 130 3" [veth,4]="23800 23500 24100 2 - 152 3"
  [wg,1]="2430 2350 2490 0 165 177 3" [wg,4]="none"
  [z,1]="0 0 0 0 50 100 1" [z,4]="0 0 0 0 - 100 1"
)
check "tput" "$(fmt_tput wg 1)" "**2.43** [2.35–2.49]"
check "tput failed" "$(fmt_tput wg 4)" "failed"
check "tput missing" "$(fmt_tput nosuch 1)" "failed"
check "pair cpu" "$(pair wg 5 as_is)" "165 · –"
check "pair veth cpu" "$(pair veth 5 as_is)" "– · –"
check "pair vs veth" "$(pair wg 1 vs_veth)" "0.139 · –"
check "pair veth vs veth" "$(pair veth 1 vs_veth)" "1.000 · 1.000"
check "pair tunnel cores" "$(pair wg 1 cores_per_gbps)" "0.68 · –"
check "pair machine cores" "$(pair veth 6 machine_per_gbps)" "0.07 · 0.06"
check "zero throughput" "$(pair z 1 cores_per_gbps)" "– · –"
check "zero throughput machine" "$(pair z 6 machine_per_gbps)" "– · –"
check "field" "$(field wg 1 7)" "3"

# run.sh refuses bad knobs before doing anything (exit status 2)
while IFS='|' read -r name env want; do
  set +e
  msg=$(env "$env" bash bench/run.sh 2>&1)
  rc=$?
  set -e
  check "knob/$name" "$rc:$(printf "%s" "$msg" | grep -c "$want")" "2:1"
done <<'CASES'
seconds not a number|BENCH_SECONDS=ten|BENCH_SECONDS=ten
seconds zero|BENCH_SECONDS=0|whole number of seconds
runs empty-ish|BENCH_RUNS=1x|BENCH_RUNS=1x
unknown system|BENCH_SYSTEMS=veth kernel|unknown system kernel
CASES

if [ "$fails" -ne 0 ]; then
  echo "table_test: $fails failed"
  exit 1
fi
echo "table_test: all passed"
