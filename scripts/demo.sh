#!/usr/bin/env bash
# demo.sh: the ovnsec OVN IPsec demo. Builds a 3-chassis OVN cluster in
# network namespaces (userspace OVS datapath), runs the EST CA service
# (`ovnsec ca serve`) in the central namespace, runs ovnsecd on every chassis
# with --enroll and a bootstrap token (each chassis enrols at start: no
# hand-made chassis certificates), and shows traffic with ipsec=false, the
# switch to ipsec=true, and traffic again. Nothing here fakes encryption: if ovnsecd has no native backend the
# demo says BLOCKED and exits non-zero.
#
#   scripts/demo.sh [run]   install deps, build, up, show everything, tear down
#                           (DEMO_KEEP=1: leave it running, print the env file)
#   scripts/demo.sh up      install deps, build, up; leave it running
#   scripts/demo.sh down    stop every demo daemon, delete the demo namespaces
#   scripts/demo.sh who     who holds the demo cluster's lock, if anyone
#
# One user of the ovd-* namespaces at a time: run, up and down hold the lock
# /tmp/ovnsec-ovd.lock (flock) while they work, as bench/ovn.sh and the demo
# tests of test/e2e do for their whole run. When another holds it, they
# change nothing and exit with status 3 naming the holder (pid and command);
# DEMO_LOCK_WAIT=SECONDS waits that long for it first. A caller that holds
# the lock itself passes its descriptor: OVD_LOCK_FD=N (an inherited
# descriptor of /tmp/ovnsec-ovd.lock with the lock held). The daemons never
# inherit the lock. A cluster left running (up, DEMO_KEEP=1) is not locked
# once the script has exited: the next run, up or down replaces it.
#
# Layout (all names prefixed ovd; addresses only inside these namespaces):
#   ovd-central  NB + SB ovsdb-server, ovn-northd,          192.0.2.10
#                EST CA service (ovnsec ca serve) on :8443
#   ovd-ul       Linux bridge ovd-ulbr, ports ovd-ul0..3   (underlay: capture here)
#   ovd-chN      ovsdb-server, ovs-vswitchd (netdev), ovn-controller, ovnsecd;
#                underlay NIC ovd-eth on OVS bridge ovd-phy  192.0.2.N
#   ovd-vmN      veth ovd-vmN <-> ovd-vmNp on the integration bridge ovd-int
#                                                          203.0.113.N
# Knobs (environment): DEMO_STATE (default /tmp/ovnsec-demo), DEMO_KEEP=1,
#   DEMO_SKIP_DEPS=1, DEMO_SKIP_BUILD=1, OVNSECD_NATIVE_ARGS, DEMO_OVNSECD
#   (path of the ovnsecd binary, default bin/ovnsecd), VM_MTU,
#   DEMO_LOCK_WAIT (seconds, default 0: fail at once), OVD_LOCK_FD,
#   DEMO_METRICS_ADDRESS (ovnsecd's --metrics-address in every chassis,
#   default :9476; empty: metrics off), DEMO_CA_LIFETIME (the CA service's
#   --lifetime of chassis certificates, default 90d; e.g. 2m to watch
#   renewals).
set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
# OVS/OVN python tools need Debian's /usr/bin/python3, not a pyenv one.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

STATE=${DEMO_STATE:-/tmp/ovnsec-demo}
BIN=$REPO/bin
OVNSECD=${DEMO_OVNSECD:-$BIN/ovnsecd} # another ovnsecd binary to try, if set
N=3
CIP=192.0.2.10
C=$STATE/central
ENVFILE=$STATE/demo.env
MARKER=$STATE/.ovnsec-demo
# 1500 - 58 (Geneve + OVN option + inner Ethernet) - 45 (ESP-in-UDP, AES-GCM)
VM_MTU=${VM_MTU:-1397}
# How ovnsecd is started per chassis with the native IKE+ESP backend. The
# bridge holds the underlay address, the NIC is its port to the underlay.
OVNSECD_NATIVE_ARGS=${OVNSECD_NATIVE_ARGS:---ike-daemon=native --bridge=ovd-phy --nic=ovd-eth}
# Prometheus metrics of every ovnsecd (http://<chassis underlay IP>:9476/metrics,
# reachable from ovd-central and the other chassis); empty: off.
METRICS_ADDRESS=${DEMO_METRICS_ADDRESS-:9476}
# The EST CA service in ovd-central; chassis certificates live this long.
CA_LISTEN=$CIP:8443
CA_URL=https://$CA_LISTEN
CA_LIFETIME=${DEMO_CA_LIFETIME:-90d}
NAMESPACES="ovd-central ovd-ul ovd-ch1 ovd-ch2 ovd-ch3 ovd-vm1 ovd-vm2 ovd-vm3"
# Every user of the ovd-* namespaces holds this lock: bench/ovn.sh, the demo
# tests of test/e2e (ovdLockPath) and this script (on descriptor 9, which no
# daemon it starts inherits: see nsx and start_ovnsecd).
OVD_LOCK=/tmp/ovnsec-ovd.lock
LOCKED=0
T0=$(date +%s.%N)

# ---------- output helpers

elapsed() { echo "$(date +%s.%N) $T0" | awk '{printf "%5.1fs", $1-$2}'; }
log() { printf '[%s] %s\n' "$(elapsed)" "$*"; }
STEP=0
step() { STEP=$((STEP + 1)); printf '\n[%s] === %d. %s\n' "$(elapsed)" "$STEP" "$*"; }
indent() { sed 's/^/    /'; }
die() {
  printf '[%s] demo: ERROR: %s\n' "$(elapsed)" "$*" >&2
  if [ -s "$STATE/daemons.err" ]; then grep -v 'opened log file' "$STATE/daemons.err" | tail -3 | indent >&2; fi
  exit 1
}
since() { echo "$(date +%s.%N) $1" | awk '{printf "%.2f", $1-$2}'; }

# ---------- the demo cluster's lock

# lock_holder: the process holding $OVD_LOCK, "pid N (COMMAND)", from
# /proc/locks; when that process has exited (a child inherited its
# descriptor), the processes that have the file open. Empty when free.
lock_holder() {
  local dev ino key pid p cmd who=""
  dev=$(stat -c %d "$OVD_LOCK" 2>/dev/null) || return 0
  ino=$(stat -c %i "$OVD_LOCK" 2>/dev/null) || return 0
  # /proc/locks: "N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF", hex
  # MAJ:MIN; a waiter's line has "->" before FLOCK.
  key=$(printf '%02x:%02x:%s' $(((dev >> 8) & 0xfff)) $(((dev & 0xff) | ((dev >> 12) & 0xfff00))) "$ino")
  pid=$(awk -v k="$key" '$2 == "FLOCK" && $6 == k { print $5; exit }' /proc/locks)
  [ -n "$pid" ] || return 0
  if [ -r /proc/$pid/cmdline ]; then
    cmd=$(tr '\0' ' ' </proc/$pid/cmdline | cut -c1-200)
    echo "pid $pid (${cmd% })"
    return 0
  fi
  local n=0
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" != $$ ] && [ "$p" != "$BASHPID" ] || continue
    if ls -l /proc/$p/fd 2>/dev/null | grep -q -- "-> $OVD_LOCK\$"; then
      n=$((n + 1))
      [ $n -le 4 ] || continue
      cmd=$(tr '\0' ' ' </proc/$p/cmdline 2>/dev/null | cut -c1-200)
      who+="${who:+, }pid $p (${cmd% })"
    fi
  done
  [ $n -le 4 ] || who+=", ..."
  echo "a descriptor that pid $pid (exited) locked, open in ${who:-no process}"
}

busy() { # busy MESSAGE: the cluster is someone else's; nothing was changed
  printf '[%s] demo: %s\n' "$(elapsed)" "$*" >&2
  exit 3
}

# take_lock: hold $OVD_LOCK on descriptor 9 until the script exits, or
# refuse (status 3) without touching anything.
take_lock() {
  if [ -n "${OVD_LOCK_FD:-}" ]; then
    local fd=$OVD_LOCK_FD
    case $fd in '' | *[!0-9]* | [012]) die "OVD_LOCK_FD=$fd: want the number (3 or more) of an inherited descriptor of $OVD_LOCK" ;; esac
    [ "$(readlink -f /proc/$$/fd/$fd 2>/dev/null)" = "$(readlink -f $OVD_LOCK)" ] ||
      die "OVD_LOCK_FD=$fd: descriptor $fd is not open on $OVD_LOCK"
    [ "$fd" = 9 ] || eval "exec 9>&$fd $fd>&-"
    # The caller's descriptor holds the lock: taking it again on the same
    # open file succeeds at once. If it does not, someone else has it.
    flock -n 9 || busy "OVD_LOCK_FD=$fd does not hold $OVD_LOCK: it is held by $(lock_holder). Nothing was changed."
    unset OVD_LOCK_FD
  else
    exec 9>>"$OVD_LOCK" || die "cannot open $OVD_LOCK"
    if ! flock -n 9; then
      local wait=${DEMO_LOCK_WAIT:-0} holder
      case $wait in '' | *[!0-9]*) die "DEMO_LOCK_WAIT=$wait: want whole seconds" ;; esac
      holder=$(lock_holder)
      [ "$wait" -gt 0 ] ||
        busy "the ovd-* demo cluster is in use: $OVD_LOCK is held by ${holder:-another process}. Nothing was changed; try again when it is done, or set DEMO_LOCK_WAIT=SECONDS to wait."
      log "the ovd-* demo cluster is in use: $OVD_LOCK is held by ${holder:-another process}; waiting up to $wait s"
      flock -w "$wait" 9 ||
        busy "the ovd-* demo cluster is still in use after $wait s: $OVD_LOCK is held by $(lock_holder). Nothing was changed."
    fi
  fi
  LOCKED=1
}

# ---------- per-instance commands

# nsx NS COMMAND...: run in NS; the daemons it starts never inherit the lock.
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@" 9>&-; }
# ev DIR: every *_RUNDIR/DBDIR/LOGDIR of OVS and OVN pointing at DIR
ev() { echo OVS_RUNDIR=$1 OVS_DBDIR=$1 OVS_LOGDIR=$1 OVN_RUNDIR=$1 OVN_DBDIR=$1 OVN_LOGDIR=$1; }
chdir() { echo "$STATE/ch$1"; }
vsctl() { local n=$1; shift; env $(ev "$(chdir $n)") ovs-vsctl --timeout=10 --db=unix:$(chdir $n)/db.sock "$@"; }
nbctl() { ovn-nbctl --timeout=10 --db=unix:$C/nb.sock "$@"; }
sbctl() { ovn-sbctl --timeout=10 --db=unix:$C/sb.sock "$@"; }
ovnsecd_ctl() { local d pid; d=$(chdir $1); pid=$(cat "$d/ovnsecd.pid" 2>/dev/null) || return 1; echo "$d/ovnsecd.$pid.ctl"; }
tunnels_show() { ovs-appctl --timeout=5 -t "$(ovnsecd_ctl $1)" tunnels/show; }
metrics_url() { # N: where ovnsecd of chassis N serves its metrics (from any demo netns)
  local host=${METRICS_ADDRESS%:*}
  case $host in "" | 0.0.0.0 | "[::]") host=192.0.2.$1 ;; esac
  echo "http://$host:${METRICS_ADDRESS##*:}/metrics"
}
metrics_of() { # N: ovnsecd's /metrics of chassis N, read in its netns with bash's /dev/tcp (no curl needed)
  local hp
  hp=$(metrics_url "$1"); hp=${hp#http://}; hp=${hp%/metrics}
  nsx ovd-ch$1 timeout 5 bash -c 'exec 3<>"/dev/tcp/${0%:*}/${0##*:}" && printf "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n" "$0" >&3 && cat <&3' "$hp" |
    tr -d '\r' | sed '1,/^$/d'
}
vm_ip() { echo 203.0.113.$1; }

# A detached daemon's parent is PID 1, which on some hosts reaps zombies late.
alive() { [ -r /proc/$1/status ] && ! grep -q '^State:.*Z' /proc/$1/status 2>/dev/null; }

stop_pidfile() { # FILE BINARY: stop a daemon by pidfile, only if it is that binary
  local pf=$1 bin=$2 pid i
  [ -f "$pf" ] || return 0
  pid=$(cat "$pf" 2>/dev/null)
  if [ -n "$pid" ] && [ -r /proc/$pid/cmdline ] && tr '\0' ' ' </proc/$pid/cmdline | grep -q "$bin"; then
    kill "$pid" 2>/dev/null
    for i in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$pf"
}

wait_for() { # SECONDS COMMAND...: poll every 0.1 s
  local end=$(($(date +%s) + $1)); shift
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(date +%s)" -lt $end ] || return 1
    sleep 0.1
  done
}

# ---------- teardown

down() {
  [ "$LOCKED" = 1 ] || die "internal error: down without holding $OVD_LOCK"
  local n
  for n in $(seq 1 $N); do
    stop_pidfile $STATE/vm$n-iperf3.pid iperf3
    stop_pidfile $STATE/ch$n/ovnsecd.pid ovnsecd
    stop_pidfile $STATE/ch$n/ovnsecd.launch.pid ovnsecd
    stop_pidfile $STATE/ch$n/ovn-controller.pid ovn-controller
    stop_pidfile $STATE/ch$n/ovs-vswitchd.pid ovs-vswitchd
    stop_pidfile $STATE/ch$n/ovsdb-server.pid ovsdb-server
  done
  stop_pidfile $C/ca.pid ovnsec
  stop_pidfile $C/ovn-northd.pid ovn-northd
  stop_pidfile $C/sb.pid ovsdb-server
  stop_pidfile $C/nb.pid ovsdb-server
  local have ns
  have=$(ip netns list | awk '{print $1}')
  for ns in $NAMESPACES; do
    if echo "$have" | grep -qx "$ns"; then ip netns del "$ns"; fi
  done
  # Only remove a state directory this script made.
  if [ -f "$MARKER" ]; then rm -rf "$STATE"; fi
}

# ---------- cluster

offload_off() { # NS DEV: veths hand CHECKSUM_PARTIAL packets to OVS's AF_PACKET
  # socket, which forwards them with a broken checksum; compute it in software.
  nsx "$1" ethtool -K "$2" tx off tso off gso off >/dev/null 2>&1 || die "ethtool -K $2 in $1 failed (is ethtool installed?)"
}

new_ns() {
  ip netns add "$1" || die "cannot create netns $1 (left over? run: scripts/demo.sh down)"
  nsx "$1" ip link set lo up
  nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

underlay() {
  new_ns ovd-ul
  nsx ovd-ul ip link add ovd-ulbr type bridge
  nsx ovd-ul ip link set ovd-ulbr up
  new_ns ovd-central
  ip -n ovd-ul link add ovd-ul0 type veth peer name ovd-c0 netns ovd-central
  ip -n ovd-ul link set ovd-ul0 master ovd-ulbr up
  ip -n ovd-central addr add $CIP/24 dev ovd-c0
  ip -n ovd-central link set ovd-c0 up
  offload_off ovd-central ovd-c0
  offload_off ovd-ul ovd-ul0
}

central() {
  mkdir -p $C
  ovsdb-tool create $C/nb.db /usr/share/ovn/ovn-nb.ovsschema || die "ovsdb-tool create NB"
  ovsdb-tool create $C/sb.db /usr/share/ovn/ovn-sb.ovsschema || die "ovsdb-tool create SB"
  nsx ovd-central env $(ev $C) ovsdb-server $C/nb.db --remote=punix:$C/nb.sock --remote=ptcp:6641:$CIP \
    --pidfile=$C/nb.pid --log-file=$C/nb.log --unixctl=$C/nb.ctl --detach --no-chdir -vconsole:off 2>>$STATE/daemons.err ||
    die "NB ovsdb-server did not start; see $C/nb.log"
  nsx ovd-central env $(ev $C) ovsdb-server $C/sb.db --remote=punix:$C/sb.sock --remote=ptcp:6642:$CIP \
    --pidfile=$C/sb.pid --log-file=$C/sb.log --unixctl=$C/sb.ctl --detach --no-chdir -vconsole:off 2>>$STATE/daemons.err ||
    die "SB ovsdb-server did not start; see $C/sb.log"
  nbctl --no-wait init || die "ovn-nbctl init"
  nsx ovd-central env $(ev $C) ovn-northd --ovnnb-db=unix:$C/nb.sock --ovnsb-db=unix:$C/sb.sock \
    --pidfile=$C/ovn-northd.pid --log-file=$C/ovn-northd.log --unixctl=$C/ovn-northd.ctl --detach --no-chdir -vconsole:off 2>>$STATE/daemons.err ||
    die "ovn-northd did not start; see $C/ovn-northd.log"
  nbctl ls-add ovd-ls || die "ovn-nbctl ls-add"
  local n
  for n in $(seq 1 $N); do
    nbctl lsp-add ovd-ls ovd-lp$n -- lsp-set-addresses ovd-lp$n "02:cb:71:00:00:0$n $(vm_ip $n)" ||
      die "ovn-nbctl lsp-add ovd-lp$n"
  done
}

chassis_net() { # N: namespaces and veths, no daemons
  local n=$1
  new_ns ovd-ch$n
  new_ns ovd-vm$n
  ip -n ovd-ul link add ovd-ul$n type veth peer name ovd-eth netns ovd-ch$n
  ip -n ovd-ul link set ovd-ul$n master ovd-ulbr up
  ip -n ovd-ch$n link set ovd-eth up
  offload_off ovd-ul ovd-ul$n
  offload_off ovd-ch$n ovd-eth
  ip -n ovd-ch$n link add ovd-vm${n}p type veth peer name ovd-vm$n netns ovd-vm$n
  ip -n ovd-ch$n link set ovd-vm${n}p up
  ip -n ovd-vm$n link set ovd-vm$n address 02:cb:71:00:00:0$n mtu $VM_MTU up
  ip -n ovd-vm$n addr add $(vm_ip $n)/24 dev ovd-vm$n
  offload_off ovd-vm$n ovd-vm$n
  offload_off ovd-ch$n ovd-vm${n}p
}

# ca_serve_args: how the CA service runs (also in the env file, CA_SERVE_ARGS,
# so that a test can stop and start it again).
ca_serve_args() {
  echo "ca serve --dir $STATE/pki --listen $CA_LISTEN --lifetime $CA_LIFETIME --sb-db tcp:$CIP:6642"
}

# ca_service: the EST CA service in ovd-central, serving the switch CA of
# $STATE/pki; it checks that each chassis is a Chassis of the Southbound
# and enrols from its Encap IP.
ca_service() {
  local i
  rm -f $C/ca.pid
  # shellcheck disable=SC2046
  ip netns exec ovd-central "$BIN/ovnsec" $(ca_serve_args) </dev/null >>$C/ca.log 2>&1 9>&- &
  echo $! >$C/ca.pid
  disown $!
  for i in $(seq 100); do
    alive "$(cat $C/ca.pid)" || die "the CA service exited: $(tail -3 $C/ca.log)"
    nsx ovd-central timeout 1 bash -c "exec 3<>/dev/tcp/${CA_LISTEN%:*}/${CA_LISTEN##*:}" 2>/dev/null && return 0
    sleep 0.1
  done
  die "the CA service does not listen on $CA_LISTEN; see $C/ca.log"
}

# ca_setup: the CA (ovnsec pki init), the CA service, one bootstrap token per
# chassis (mode 0600, one-time). No chassis certificate is made here.
ca_setup() {
  local n out d
  out=$("$BIN/ovnsec" pki --dir=$STATE/pki --batch init 2>&1) || die "ovnsec pki init: $out"
  [ -f $STATE/pki/switchca/cacert.pem ] || die "no CA certificate at $STATE/pki/switchca/cacert.pem"
  ca_service
  for n in $(seq 1 $N); do
    d=$(chdir $n)
    mkdir -p $d
    (umask 077 && "$BIN/ovnsec" ca token create --dir $STATE/pki --chassis ch$n --ttl 1h >$d/enroll-token 2>>$C/ca.log) ||
      die "ovnsec ca token create --chassis ch$n failed; see $C/ca.log"
  done
}

# enroll_args N: ovnsecd's --enroll flags for chassis N. ch1 and ch2 trust
# the CA file at the first contact, the last chassis its fingerprint.
enroll_args() {
  local n=$1 d trust
  d=$(chdir $n)
  if [ "$n" = $N ]; then
    trust="--enroll-ca-fingerprint=$(openssl x509 -in $STATE/pki/switchca/cacert.pem -noout -fingerprint -sha256 | cut -d= -f2)"
  else
    trust="--enroll-ca-cert=$STATE/pki/switchca/cacert.pem"
  fi
  echo "--enroll=$CA_URL --enroll-token-file=$d/enroll-token $trust --enroll-dir=$d/pki"
}

ca_status() { ovs-appctl --timeout=5 -t "$(ovnsecd_ctl $1)" ca/status; }
enrolled_count() { # chassis whose ovnsecd says it is enrolled
  local n c=0
  for n in $(seq 1 $N); do
    ca_status $n 2>/dev/null | grep -q '^State: *enrolled' && c=$((c + 1))
  done
  echo $c
}
# cert_line N: subject, issuer, not after and next renewal of chassis N
cert_line() {
  ca_status $1 | awk -F': +' '
    /^  Subject:/ {s=$2} /^  Issuer:/ {i=$2} /^  Not after:/ {a=$2} /^Next renewal:/ {r=$2}
    END {printf "subject %s; issuer %s; not after %s; next renewal %s", s, i, a, r}'
}

chassis_daemons() { # N: ovsdb-server, ovs-vswitchd, ovn-controller in ovd-chN
  local n=$1 d
  d=$(chdir $n)
  mkdir -p $d
  ovsdb-tool create $d/conf.db /usr/share/openvswitch/vswitch.ovsschema || die "ovsdb-tool create ch$n"
  nsx ovd-ch$n env $(ev $d) ovsdb-server $d/conf.db --remote=punix:$d/db.sock \
    --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
    --pidfile=$d/ovsdb-server.pid --log-file=$d/ovsdb-server.log --unixctl=$d/ovsdb-server.ctl \
    --detach --no-chdir -vconsole:off 2>>$STATE/daemons.err || die "ch$n ovsdb-server did not start; see $d/ovsdb-server.log"
  vsctl $n --no-wait init || die "ch$n ovs-vsctl init"
  vsctl $n --no-wait set Open_vSwitch . \
    external_ids:system-id=ch$n external_ids:hostname=ovd-ch$n \
    external_ids:ovn-remote=tcp:$CIP:6642 \
    external_ids:ovn-encap-type=geneve external_ids:ovn-encap-ip=192.0.2.$n \
    external_ids:ovn-bridge=ovd-int external_ids:ovn-bridge-datapath-type=netdev ||
    die "ch$n ovs-vsctl set Open_vSwitch"
  # The underlay address lives on the bridge ovd-phy, whose port is the veth:
  # the userspace datapath routes tunnel packets out of an OVS bridge only.
  vsctl $n --no-wait -- add-br ovd-phy -- set bridge ovd-phy datapath_type=netdev \
    -- add-port ovd-phy ovd-eth || die "ch$n add-br ovd-phy"
  vsctl $n --no-wait -- add-br ovd-int -- set bridge ovd-int datapath_type=netdev fail_mode=secure \
    other_config:disable-in-band=true \
    -- add-port ovd-int ovd-vm${n}p -- set interface ovd-vm${n}p external_ids:iface-id=ovd-lp$n ||
    die "ch$n add-br ovd-int"
  nsx ovd-ch$n env $(ev $d) ovs-vswitchd unix:$d/db.sock --disable-system \
    --pidfile=$d/ovs-vswitchd.pid --log-file=$d/ovs-vswitchd.log --unixctl=$d/ovs-vswitchd.ctl \
    --detach --no-chdir -vconsole:off 2>>$STATE/daemons.err || die "ch$n ovs-vswitchd did not start; see $d/ovs-vswitchd.log"
  wait_for 10 ip -n ovd-ch$n link show ovd-phy || die "ch$n: tap ovd-phy never appeared; see $d/ovs-vswitchd.log"
  ip -n ovd-ch$n addr add 192.0.2.$n/24 dev ovd-phy
  ip -n ovd-ch$n link set ovd-phy up
  # ovn-controller 23.03 has no --unixctl; its socket is $OVN_RUNDIR/ovn-controller.<pid>.ctl
  nsx ovd-ch$n env $(ev $d) ovn-controller unix:$d/db.sock \
    --pidfile=$d/ovn-controller.pid --log-file=$d/ovn-controller.log --detach --no-chdir -vconsole:off 2>>$STATE/daemons.err ||
    die "ch$n ovn-controller did not start; see $d/ovn-controller.log"
}

# start_ovnsecd N ARGS...: run ovnsecd in ovd-chN in the background; succeed
# once its control socket answers, fail (with its last words in
# $d/ovnsecd.out) when it exits.
start_ovnsecd() {
  local n=$1 d pid i; shift
  d=$(chdir $n)
  rm -f $d/ovnsecd.pid
  if [ -n "$METRICS_ADDRESS" ]; then set -- "$@" --metrics-address="$METRICS_ADDRESS"; fi
  # shellcheck disable=SC2046
  set -- "$@" $(enroll_args $n)
  # shellcheck disable=SC2086
  ip netns exec ovd-ch$n env $(ev $d) "$OVNSECD" "$@" --rundir=$d --pidfile=$d/ovnsecd.pid \
    --log-file=$d/ovnsecd.log unix:$d/db.sock </dev/null >$d/ovnsecd.out 2>&1 9>&- &
  pid=$!
  disown $pid # a daemon: never killed with the demo's own background jobs
  echo $pid >$d/ovnsecd.launch.pid
  for i in $(seq 100); do
    alive $pid || return 1
    if [ -f $d/ovnsecd.pid ] && ovs-appctl --timeout=2 -t "$(ovnsecd_ctl $n)" version >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "ovnsecd: no answer on its control socket within 10 s" >>$d/ovnsecd.out
  kill $pid 2>/dev/null
  return 1
}

BACKEND=""
BGPIDS=""
SUMMARY=()
note() { SUMMARY+=("$*"); } # a line for the summary at the end of `run`
ovnsecds() { # start ovnsecd everywhere: native if this build has it, else the fallback
  local n why
  # shellcheck disable=SC2086
  if start_ovnsecd 1 $OVNSECD_NATIVE_ARGS; then
    BACKEND=native
    for n in $(seq 2 $N); do
      start_ovnsecd $n $OVNSECD_NATIVE_ARGS || die "ovnsecd (native) on ch$n did not start: $(tail -3 $(chdir $n)/ovnsecd.out)"
    done
    log "ovnsecd runs on every chassis with: $OVNSECD_NATIVE_ARGS"
    return
  fi
  why=$(grep '^ovnsecd: ' $(chdir 1)/ovnsecd.out | tail -1)
  case "$why" in
    *"not available in this build"* | *"flag provided but not defined"*) ;;
    *) die "ovnsecd with '$OVNSECD_NATIVE_ARGS' failed on ch1: ${why:-$(tail -3 $(chdir 1)/ovnsecd.out)}" ;;
  esac
  log "ovnsecd refused '$OVNSECD_NATIVE_ARGS': $why"
  log "starting ovnsecd --ike-daemon=strongswan with NO charon behind it, so tunnels/show can still list the tunnels"
  BACKEND=strongswan-fallback
  for n in $(seq 1 $N); do
    start_ovnsecd $n --ike-daemon=strongswan --vici-socket=unix://$(chdir $n)/no-charon.vici ||
      die "ovnsecd (strongswan fallback) on ch$n did not start: $(tail -3 $(chdir $n)/ovnsecd.out)"
  done
}

ping_ok() { nsx ovd-vm$1 ping -c1 -W0.3 -q $(vm_ip $2) >/dev/null 2>&1; }
all_pings_ok() {
  local a b
  for a in $(seq 1 $N); do for b in $(seq 1 $N); do
    [ $a = $b ] || ping_ok $a $b || return 1
  done; done
}

write_env() {
  local n ns="" vms="" ips="" cips="" dbs="" dirs="" ctls="" logs="" murls="" edirs=""
  for n in $(seq 1 $N); do
    edirs+="$(chdir $n)/pki "
    ns+="ovd-ch$n "; vms+="ovd-vm$n "; ips+="$(vm_ip $n) "; cips+="192.0.2.$n "
    [ -z "$METRICS_ADDRESS" ] || murls+="$(metrics_url $n) "
    dbs+="unix:$(chdir $n)/db.sock "; dirs+="$(chdir $n) "
    ctls+="$(ovnsecd_ctl $n) "; logs+="$(chdir $n)/ovnsecd.log "
  done
  {
    echo "# ovnsec demo environment; source it: . $ENVFILE"
    echo "# Lists are space-separated, in chassis order (ch1 ch2 ch3)."
    echo "DEMO_STATE=\"$STATE\""
    echo "UNDERLAY_NS=\"ovd-ul\"             # tcpdump -ni any here sees all inter-chassis traffic"
    echo "UNDERLAY_IFS=\"ovd-ul1 ovd-ul2 ovd-ul3\"  # one per chassis, in ovd-ul"
    echo "CENTRAL_NS=\"ovd-central\""
    echo "CHASSIS=\"ch1 ch2 ch3\""
    echo "CHASSIS_NS=\"${ns% }\""
    echo "CHASSIS_IPS=\"${cips% }\""
    echo "VM_NS=\"${vms% }\""
    echo "VM_IPS=\"${ips% }\""
    echo "NB_DB=\"unix:$C/nb.sock\""
    echo "SB_DB=\"unix:$C/sb.sock\""
    echo "OVS_DBS=\"${dbs% }\""
    echo "OVS_RUNDIRS=\"${dirs% }\"   # OVS_RUNDIR of each chassis (ovs-vswitchd.ctl, ovnsecd.<pid>.ctl)"
    echo "OVNSECD_CTLS=\"${ctls% }\"   # ovs-appctl -t <ctl> tunnels/show"
    echo "OVNSECD_LOGS=\"${logs% }\""
    echo "OVNSECD_BACKEND=\"$BACKEND\"   # native, or strongswan-fallback (no encryption)"
    echo "METRICS_URLS=\"${murls% }\"   # ovnsecd's Prometheus metrics, from any demo netns (empty: off)"
    echo "CA_CERT=\"$STATE/pki/switchca/cacert.pem\""
    echo "CA_DIR=\"$STATE/pki\"   # the ovs-pki directory the CA service serves"
    echo "CA_URL=\"$CA_URL\"   # the EST CA service (ovnsec ca serve) in ovd-central"
    echo "CA_SERVE_ARGS=\"$(ca_serve_args)\"   # ovnsec's arguments, run in ovd-central"
    echo "CA_PIDFILE=\"$C/ca.pid\""
    echo "CA_LOG=\"$C/ca.log\""
    echo "CA_LIFETIME=\"$CA_LIFETIME\""
    echo "ENROLL_DIRS=\"${edirs% }\"   # each chassis' --enroll-dir (chassis-cert.pem, chassis-privkey.pem, cacert.pem)"
  } >$ENVFILE
}

up() {
  [ "$(id -u)" = 0 ] || die "run as root (network namespaces, OVS daemons)"
  down
  mkdir -p $STATE && touch $MARKER
  if [ "${DEMO_SKIP_DEPS:-0}" != 1 ]; then
    step "Install what the demo needs (scripts/install-deps.sh)"
    "$REPO/scripts/install-deps.sh" 2>&1 9>&- | indent || die "scripts/install-deps.sh failed"
  fi
  if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
    step "Build (go build ./cmd/...)"
    (cd "$REPO" && "$GO" build -o bin/ ./cmd/... 9>&-) || die "go build failed"
    log "built: $(cd $BIN && ls | tr '\n' ' ')"
  fi
  step "Start OVN central (NB, SB, northd) and the underlay in netns ovd-central / ovd-ul"
  underlay
  central
  log "logical switch ovd-ls with ports ovd-lp1..3 ($(vm_ip 1), $(vm_ip 2), $(vm_ip 3))"

  step "Make a CA (ovnsec pki init), start the EST CA service in ovd-central, one bootstrap token per chassis"
  local t
  t=$(date +%s.%N)
  ca_setup
  log "bin/ovnsec pki --dir=$STATE/pki --batch init; bin/ovnsec $(ca_serve_args) ($(since $t) s)"
  log "CA service at $CA_URL (chassis certificates live $CA_LIFETIME); bin/ovnsec ca token create --chassis chN >$STATE/chN/enroll-token"

  step "Start 3 chassis (ovsdb-server, ovs-vswitchd --disable-system, ovn-controller) in ovd-ch1..3"
  local n
  for n in $(seq 1 $N); do chassis_net $n; done
  t=$(date +%s.%N)
  for n in $(seq 1 $N); do chassis_daemons $n; done
  log "chassis daemons started ($(since $t) s); no certificate configured: ovnsecd enrols"
  wait_for 60 all_pings_ok || die "VMs cannot reach each other 60 s after start; see $STATE/ch*/ovn-controller.log"
  t=$(since $t)
  log "all VM pairs reach each other $t s after starting the chassis daemons"
  note "cluster: 3 chassis up, VMs reach each other $t s after the chassis daemons started"

  step "Start ovnsecd in every chassis netns, each enrolling with the CA service (--enroll)"
  t=$(date +%s.%N)
  ovnsecds
  log "ovnsecd ch1: $(enroll_args 1)"
  log "ovnsecd ch$N: $(enroll_args $N)"
  wait_count 60 $N enrolled_count || {
    ca_status 1 | indent
    die "not every chassis enrolled within 60 s ($(enrolled_count) of $N); see $STATE/ch*/ovnsecd.log and $C/ca.log"
  }
  log "every chassis enrolled $(since $t) s after ovnsecd started; other_config points at the enrolled files:"
  vsctl 1 get Open_vSwitch . other_config | indent
  openssl x509 -in $(chdir 1)/pki/chassis-cert.pem -noout -subject -issuer -enddate -ext subjectAltName 2>/dev/null | indent
  write_env
}

show_certificates() { # every chassis' certificate, from ovs-appctl ca/status, also into the summary
  step "Chassis certificates (ovs-appctl -t <ovnsecd> ca/status)"
  ca_status 1 | indent
  local n
  for n in $(seq 1 $N); do
    log "ch$n: $(cert_line $n)"
    note "certificate ch$n: $(cert_line $n)"
  done
}

# ---------- what the demo shows

show_metrics() { # a few of ch1's ovnsec_tunnel_* lines, also into the summary
  [ -n "$METRICS_ADDRESS" ] || return 0
  step "Prometheus metrics of ch1 ($(metrics_url 1), read from inside ovd-ch1)"
  local m line
  m=$(metrics_of 1) || { log "cannot read $(metrics_url 1)"; note "metrics: cannot read $(metrics_url 1)"; return 0; }
  echo "$m" | grep -E '^ovnsec_(tunnel_up|tunnel_state\{state="up"|esp_packets_total|esp_bytes_total)' | indent
  while read -r line; do
    note "metrics ch1: $line"
  done < <(echo "$m" | grep -E '^ovnsec_tunnel_(up|state\{state="up")' | head -4)
}

PING="not run"
pings() { # every VM pair; PING says "OK" or which pair lost packets
  local a b out
  PING=OK
  for a in $(seq 1 $N); do for b in $(seq $((a + 1)) $N); do
    out=$(nsx ovd-vm$a ping -c3 -i0.2 -W1 -q $(vm_ip $b)) || PING="packet loss vm$a -> vm$b"
    printf '    vm%s -> vm%s: %s\n' $a $b "$(echo "$out" | tail -2 | tr '\n' ' ' | sed 's/ *$//')"
  done; done
}

iperf() {
  local pf=$STATE/vm2-iperf3.pid out
  stop_pidfile $pf iperf3
  nsx ovd-vm2 iperf3 -s -D -1 -I $pf -B $(vm_ip 2) >/dev/null 2>&1 || { log "iperf3 server did not start"; return 1; }
  wait_for 5 nsx ovd-vm2 sh -c "ss -ltn | grep -q ':5201'"
  out=$(nsx ovd-vm1 timeout 20 iperf3 -c $(vm_ip 2) -t 3 -f m 2>&1)
  echo "$out" | grep -E 'sender|receiver|error' | sed 's/^\[ *[0-9]*\] *//' | indent
  IPERF_RATE=$(echo "$out" | awk '/receiver/ {for (i = 1; i < NF; i++) if ($(i+1) ~ /bits\/sec/) print $i " " $(i+1)}')
  stop_pidfile $pf iperf3
  echo "$out" | grep -q receiver
}

# capture FILE: tcpdump on ch1's underlay link (inter-chassis only) while
# vm1 pings vm2 and vm3; one line per packet in FILE.
capture() {
  local f=$1 pid
  rm -f $f $f.err
  ip netns exec ovd-ul timeout -s INT 8 tcpdump -l -n -i ovd-ul1 -c 40 \
    'ip and src net 192.0.2.0/24 and dst net 192.0.2.0/24 and not host 192.0.2.10' >$f 2>$f.err 9>&- &
  pid=$!
  BGPIDS+=" $pid"
  wait_for 5 grep -q 'listening on' $f.err
  nsx ovd-vm1 ping -c3 -i0.2 -W1 -q $(vm_ip 2) >/dev/null
  nsx ovd-vm1 ping -c3 -i0.2 -W1 -q $(vm_ip 3) >/dev/null
  sleep 0.3
  kill -INT $pid 2>/dev/null
  wait $pid 2>/dev/null
}

# classify FILE: counts of ESP, Geneve (plaintext tunnel), IKE and other packets
classify() {
  awk '/ESP\(/ {e++; next} /Geneve|\.6081: / {g++; next} /isakmp|IKEv2|\.500: |\.4500: / {i++; next} NF {o++}
       END {printf "ESP %d, Geneve %d, IKE %d, other %d\n", e, g, i, o}' "$1"
}

tunnel_options() { # one line per tunnel port on every chassis
  local n
  for n in $(seq 1 $N); do
    vsctl $n --bare --columns=name,options find Interface type=geneve | awk -v c=ch$n 'NF {printf "%s %s", c, $0; getline; print " " $0}'
  done
}

# remote_name_count: tunnel ports that carry remote_name, over all chassis
remote_name_count() { tunnel_options | grep -c 'remote_name=' ; }
shown_count() { # tunnels ovnsecd lists as CONFIGURED, over all chassis
  local n c=0 k
  for n in $(seq 1 $N); do
    k=$(tunnels_show $n 2>/dev/null | grep -c "^Interface name: .*(CONFIGURED)")
    c=$((c + k))
  done
  echo $c
}
up_count() { # tunnels whose status is up, over all chassis
  local n c=0 k
  for n in $(seq 1 $N); do
    k=$(tunnels_show $n 2>/dev/null | grep -c '^  Status: *up$')
    c=$((c + k))
  done
  echo $c
}

wait_count() { # SECONDS WANT FUNC: poll FUNC until it prints WANT
  local end=$(($(date +%s) + $1)) want=$2 fn=$3
  while :; do
    [ "$($fn)" = "$want" ] && return 0
    [ "$(date +%s)" -lt $end ] || return 1
    sleep 0.1
  done
}

show_capture() { # FILE
  local f=$1
  log "underlay capture on ovd-ul1 (inter-chassis IP packets): $(classify $f)"
  head -4 $f | cut -c1-160 | indent
}

run() {
  local t d tot
  trap 'on_exit' EXIT
  up

  step "Traffic with ipsec=false"
  log "chassis registered in SB: $(sbctl --bare --columns=name list Chassis | grep . | sort | tr '\n' ' ')"
  pings
  log "iperf3 vm1 -> vm2, 3 s:"
  IPERF_RATE="failed"
  iperf || log "iperf3 failed"
  capture $STATE/capture-plain.txt
  show_capture $STATE/capture-plain.txt
  note "ipsec=false: ping $PING, iperf3 $IPERF_RATE, underlay: $(classify $STATE/capture-plain.txt)"
  [ "$PING" = OK ] || die "ipsec=false: $PING"

  step "ovn-nbctl set nb_global . ipsec=true"
  tot=$((N * (N - 1)))
  t=$(date +%s.%N)
  nbctl set nb_global . ipsec=true || die "ovn-nbctl set nb_global . ipsec=true"
  wait_count 30 $tot remote_name_count || die "tunnel ports did not get remote_name within 30 s"
  log "northd -> SB -> ovn-controller: all $tot tunnel ports got local_ip + remote_name in $(since $t) s"
  tunnel_options | grep '^ch1' | sort | indent
  wait_count 30 $tot shown_count || die "ovnsecd did not list all $tot tunnels as CONFIGURED within 30 s"
  d=$(since $t)
  log "ovnsecd lists all $tot tunnels as CONFIGURED ($d s)"
  note "ipsec=true: all $tot tunnel ports got remote_name, ovnsecd lists them CONFIGURED after $d s"

  if [ "$BACKEND" != native ]; then
    step "tunnels/show on ch1 (ovs-appctl -t $(ovnsecd_ctl 1) tunnels/show)"
    tunnels_show 1 | indent
    echo
    log "BLOCKED: ovnsecd has no native backend in this build; the ipsec=true part cannot encrypt"
    note "BLOCKED: ovnsecd has no native backend in this build; the ipsec=true part cannot encrypt"
    return 2
  fi

  wait_count ${DEMO_UP_TIMEOUT:-60} $tot up_count || {
    tunnels_show 1 | indent
    die "not all $tot tunnels came up within ${DEMO_UP_TIMEOUT:-60} s ($(up_count) up); see $STATE/ch*/ovnsecd.log"
  }
  d=$(since $t)
  log "all $tot tunnels up $d s after ipsec=true"
  note "ipsec=true: all $tot tunnels up $d s after the switch"

  step "tunnels/show on ch1 (ovs-appctl -t $(ovnsecd_ctl 1) tunnels/show)"
  tunnels_show 1 | indent
  show_certificates

  step "Traffic with ipsec=true"
  pings
  log "iperf3 vm1 -> vm2, 3 s:"
  IPERF_RATE="failed"
  iperf || log "iperf3 failed"
  capture $STATE/capture-ipsec.txt
  show_capture $STATE/capture-ipsec.txt
  note "ipsec=true: ping $PING, iperf3 $IPERF_RATE, underlay: $(classify $STATE/capture-ipsec.txt)"
  [ "$PING" = OK ] || die "ipsec=true: $PING"
  show_metrics
  local cls
  cls=$(classify $STATE/capture-ipsec.txt)
  case "$cls" in
    "ESP 0,"*) die "no ESP packet seen with ipsec=true: $cls" ;;
    *"Geneve 0, IKE "*", other 0") log "only ESP on the underlay" ;;
    *) die "traffic other than ESP crossed the underlay with ipsec=true: $cls" ;;
  esac

  step "ovn-nbctl set nb_global . ipsec=false"
  t=$(date +%s.%N)
  nbctl set nb_global . ipsec=false || die "ovn-nbctl set nb_global . ipsec=false"
  wait_count 30 0 remote_name_count || die "remote_name stayed on tunnel ports 30 s after ipsec=false"
  wait_count 30 0 shown_count || die "ovnsecd still lists tunnels 30 s after ipsec=false"
  d=$(since $t)
  log "tunnel options and ovnsecd's tunnels gone in $d s"
  pings
  note "ipsec=false again: options and ovnsecd's tunnels gone after $d s, ping $PING"
  [ "$PING" = OK ] || die "ipsec=false again: $PING"
  return 0
}

on_exit() {
  local rc=$?
  # captures never outlive the demo
  local p
  for p in $BGPIDS; do kill $p 2>/dev/null; done
  if [ "$CMD" = run ] && [ ${#SUMMARY[@]} -gt 0 ]; then
    printf '\n=== Summary\n'
    printf '  %s\n' "${SUMMARY[@]}"
  fi
  if [ "$CMD" = up ] && [ $rc != 0 ]; then
    down
  elif [ "$CMD" = run ]; then
    if [ "${DEMO_KEEP:-0}" = 1 ] && [ -f "$ENVFILE" ]; then
      echo
      log "cluster left running (DEMO_KEEP=1); remove it with: make demo-down"
      echo "demo environment: $ENVFILE"
    else
      down
      log "torn down"
    fi
  fi
  exit $rc
}

CMD=${1:-run}
case "$CMD" in
  run | up | down) take_lock ;; # before any trap: a refusal touches nothing
esac
case "$CMD" in
  run)
    run
    rc=$?
    [ $rc = 0 ] && log "demo finished: OK"
    exit $rc
    ;;
  up)
    trap 'on_exit' EXIT
    up
    echo "demo environment: $ENVFILE"
    ;;
  down)
    down
    log "demo down"
    ;;
  who)
    holder=$(lock_holder)
    echo "${holder:-nobody holds $OVD_LOCK}"
    ;;
  *)
    echo "usage: $0 [run|up|down|who]" >&2
    exit 2
    ;;
esac
