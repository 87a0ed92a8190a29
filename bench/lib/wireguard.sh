# shellcheck shell=bash disable=SC2034,SC2154 # sets the SYS_* arrays and <sys>_NAME/_CIPHER that run.sh declares and reads
# wireguard.sh: the wireguard-go row. Userspace WireGuard (ChaCha20-Poly1305)
# built from golang.zx2c4.com/wireguard at the version pinned below into a
# private GOBIN (not the repository), configured with Debian's wg. One
# process per end, run in the foreground so its pid is the tunnel's CPU.
# Underlay 198.51.100.33/.34, inner 203.0.113.17/.18 (/28), MTU 1420.

wggo_NAME="wireguard-go"
wggo_CIPHER="ChaCha20-Poly1305"
WGGO_VERSION=v0.0.0-20260522210424-ecfc5a8d5446

# wggo_binary builds wireguard-go once into $BENCH_CACHE/bin.
wggo_binary() {
  local bin="$BENCH_CACHE/bin/wireguard"
  if [ ! -x "$bin" ] || [ "$(cat "$BENCH_CACHE/bin/wireguard.version" 2>/dev/null)" != "$WGGO_VERSION" ]; then
    bench_log "building wireguard-go $WGGO_VERSION into $BENCH_CACHE/bin"
    mkdir -p "$BENCH_CACHE/bin"
    (cd "$BENCH_CACHE" && GOBIN="$BENCH_CACHE/bin" go install "golang.zx2c4.com/wireguard@$WGGO_VERSION") >&2 || return 1
    echo "$WGGO_VERSION" >"$BENCH_CACHE/bin/wireguard.version"
  fi
  echo "$bin"
}

start_wggo() {
  local bin
  bin=$(wggo_binary) || { SYS_FAIL[wggo]="go install golang.zx2c4.com/wireguard@$WGGO_VERSION failed"; return 1; }
  bench_ns_pair wg 198.51.100.33 198.51.100.34 28
  local d="$BENCH_WORK/wg" side ns dev peer_ep inner peer_inner other
  mkdir -p "$d"
  (umask 077 && wg genkey >"$d/a.key" && wg genkey >"$d/b.key") || { SYS_FAIL[wggo]="wg genkey failed"; return 1; }
  wg pubkey <"$d/a.key" >"$d/a.pub" && wg pubkey <"$d/b.key" >"$d/b.pub"
  for side in a b; do
    ns=bnch-wg-$side dev=bnchwgt$side
    if [ "$side" = a ]; then
      peer_ep=198.51.100.34 inner=203.0.113.17 peer_inner=203.0.113.18 other=b
    else
      peer_ep=198.51.100.33 inner=203.0.113.18 peer_inner=203.0.113.17 other=a
    fi
    # The UAPI socket lives in /var/run/wireguard/<dev>.sock (not per
    # namespace), hence distinct device names per end.
    BENCH_ATEXIT+=("rm -f /var/run/wireguard/$dev.sock")
    LOG_LEVEL=error ip netns exec "$ns" "$bin" -f "$dev" >"$d/$side.log" 2>&1 &
    BENCH_PIDS+=($!)
    SYS_PIDS[wggo]="${SYS_PIDS[wggo]:-} $!"
    for _ in $(seq 50); do
      [ -S "/var/run/wireguard/$dev.sock" ] && break
      sleep 0.1
    done
    ip netns exec "$ns" wg set "$dev" private-key "$d/$side.key" listen-port 51820 \
      peer "$(cat "$d/$other.pub")" endpoint "$peer_ep:51820" allowed-ips "$peer_inner/32" || {
      SYS_FAIL[wggo]="wg set $dev failed: $(grep -v '[│┌└]' "$d/$side.log" | tail -n 2 | tr '\n|' ' /')"
      return 1
    }
    ip -n "$ns" addr add "$inner/28" dev "$dev"
    ip -n "$ns" link set "$dev" mtu 1420 up
  done
  SYS_NS[wggo]=bnch-wg-a SYS_SRC[wggo]=203.0.113.17 SYS_DST[wggo]=203.0.113.18
  bench_wait_ping bnch-wg-a 203.0.113.18 || { SYS_FAIL[wggo]="no ping through wireguard-go"; return 1; }
  bench_iperf_server bnch-wg-b || return 1
  SYS_NOTE[wggo]="TUN $(bench_tun_info bnch-wg-a bnchwgta)"
}
