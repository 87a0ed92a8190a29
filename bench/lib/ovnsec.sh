# shellcheck shell=bash disable=SC2034,SC2154 # sets the SYS_* arrays and <sys>_NAME/_CIPHER that run.sh declares and reads
# ovnsec.sh: the ovnsec row. cmd/ovnsec-esp (internal/datapath/tun with
# internal/esp): tunnel-mode ESP-in-UDP on 4500 over TUN, AES-GCM-256,
# static test keys (no IKE). Same binary and flags as bench/tun.sh, in our
# own namespaces. Underlay 198.51.100.17/.18, inner 203.0.113.1/.2.

esptun_NAME="ovnsec ESP over TUN"
esptun_CIPHER="ESP AES-GCM-256 (Go crypto/cipher)"

# Static test keys (AES-256-GCM key + salt, 36 bytes), fresh per run. They
# never appear in any process's argv: bash builtins write them to 0600 key
# files (--key-file), removed once both ends have read them.
start_esptun() {
  if [ ! -d cmd/ovnsec-esp ]; then
    SYS_FAIL[esptun]="not available yet: cmd/ovnsec-esp is not in the tree"
    return 1
  fi
  local bin="$BENCH_WORK/ovnsec-esp"
  go build -o "$bin" ./cmd/ovnsec-esp >"$BENCH_WORK/esp-build.log" 2>&1 || {
    SYS_FAIL[esptun]="not available: cmd/ovnsec-esp does not build ($(head -n 2 "$BENCH_WORK/esp-build.log" | tr '\n' ' '))"
    return 1
  }
  bench_ns_pair esp 198.51.100.17 198.51.100.18 28
  local kab kba up=0
  kab=$(head -c 36 /dev/urandom | od -An -tx1 | tr -d ' \n')
  kba=$(head -c 36 /dev/urandom | od -An -tx1 | tr -d ' \n')
  (
    umask 077
    printf 'key-out %s\nkey-in %s\n' "$kab" "$kba" >"$BENCH_WORK/esp-a.keys"
    printf 'key-out %s\nkey-in %s\n' "$kba" "$kab" >"$BENCH_WORK/esp-b.keys"
  )
  ip netns exec bnch-esp-a "$bin" --static-keys-for-testing --dev bnchespta \
    --local 198.51.100.17 --remote 198.51.100.18 --addr 203.0.113.1/32 --remote-net 203.0.113.2/32 \
    --spi-out 0x1001 --spi-in 0x2002 --key-file "$BENCH_WORK/esp-a.keys" \
    >"$BENCH_WORK/esp-a.out" 2>"$BENCH_WORK/esp-a.log" &
  BENCH_PIDS+=($!)
  SYS_PIDS[esptun]="$!"
  ip netns exec bnch-esp-b "$bin" --static-keys-for-testing --dev bnchesptb \
    --local 198.51.100.18 --remote 198.51.100.17 --addr 203.0.113.2/32 --remote-net 203.0.113.1/32 \
    --spi-out 0x2002 --spi-in 0x1001 --key-file "$BENCH_WORK/esp-b.keys" \
    >"$BENCH_WORK/esp-b.out" 2>"$BENCH_WORK/esp-b.log" &
  BENCH_PIDS+=($!)
  SYS_PIDS[esptun]="${SYS_PIDS[esptun]} $!"
  SYS_NS[esptun]=bnch-esp-a SYS_SRC[esptun]=203.0.113.1 SYS_DST[esptun]=203.0.113.2
  bench_wait_ping bnch-esp-a 203.0.113.2 && up=1
  # Both ends read their keys at start; a ping answer means they have.
  rm -f "$BENCH_WORK/esp-a.keys" "$BENCH_WORK/esp-b.keys"
  [ "$up" = 1 ] || {
    SYS_FAIL[esptun]="no ping through ovnsec-esp: $(tail -q -n 1 "$BENCH_WORK"/esp-*.log | tr '\n|' ' /')"
    return 1
  }
  bench_iperf_server bnch-esp-b || return 1
  SYS_NOTE[esptun]="cmd/ovnsec-esp, TUN $(bench_tun_info bnch-esp-a bnchespta), static test keys (no IKE)"
}

# stop_esptun ends both engines and adds their exit counters (packets and
# drops by reason, the JSON line cmd/ovnsec-esp prints at exit) to the details.
stop_esptun() {
  # shellcheck disable=SC2086 # a list of pids
  bench_kill ${SYS_PIDS[esptun]}
  local side summary
  for side in a b; do
    summary=$(/usr/bin/python3 -c '
import json, sys
try:
    j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception:
    print("no exit counters"); sys.exit(0)
def drops(d):
    d = d or {}
    return "%d" % sum(d.values()) + ("" if not d else " (" + ", ".join("%s %d" % kv for kv in sorted(d.items())) + ")")
print("tx %d pkts/%d batches, rx %d pkts/%d batches, tx drops %s, rx drops %s" % (
    j.get("TxPackets", 0), j.get("TxBatches", 0), j.get("RxPackets", 0), j.get("RxBatches", 0),
    drops(j.get("TxDrops")), drops(j.get("RxDrops"))))
' "$BENCH_WORK/esp-$side.out" 2>/dev/null) || summary="no exit counters"
    SYS_DETAIL[esptun]+="${SYS_DETAIL[esptun]:+; }end $side: $summary"
  done
}
