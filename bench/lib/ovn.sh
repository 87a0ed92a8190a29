# shellcheck shell=bash
# ovn.sh: plumbing for bench/ovn.sh on the demo cluster of scripts/demo.sh
# (3 chassis ovd-ch1..3, VMs ovd-vm1..3): daemon pids and control sockets,
# the ipsec switch and its wait, CPU of the chassis daemons over a run,
# OpenFlow counters of the ESP steering rules on ovd-phy, ESP engine drop
# counters from tunnels/show, Child SA rekeys from ovnsecd's log, and one
# UDP-under-ping period (iperf3 UDP + 10 ms ping, stopped on demand).
# Sourced after bench/lib/common.sh; needs OVN_STATE (the demo's
# DEMO_STATE) and BENCH_WORK. Chassis are numbered 1..3, VMs likewise.

# The cookies scripts/demo.sh's ovnsecd puts on ovd-phy (internal/datapath/
# ovsbridge/rules.go): "ovnsec" + rule kind.
OVN_COOKIE_TO_ENGINE=0x6f766e7365630001 # LOCAL -> engine: plaintext tunnel packets to seal
OVN_COOKIE_ESP_IN=0x6f766e7365630002    # NIC -> engine: ESP from the peer
OVN_COOKIE_ESP_OUT=0x6f766e7365630003   # engine -> NIC: sealed ESP to the peer
OVN_COOKIE_OPENED=0x6f766e7365630004    # engine -> LOCAL: opened packets from the peer

ovn_dir() { echo "$OVN_STATE/ch$1"; }
ovn_pid() { cat "$(ovn_dir "$1")/$2.pid" 2>/dev/null; } # ovn_pid N DAEMON
ovn_ctl() { echo "$(ovn_dir "$1")/ovnsecd.$(ovn_pid "$1" ovnsecd).ctl"; }
ovn_show() { ovs-appctl --timeout=5 -t "$(ovn_ctl "$1")" tunnels/show; }
ovn_nbctl() { ovn-nbctl --timeout=10 --db="unix:$OVN_STATE/central/nb.sock" "$@"; }
ovn_vsctl() { local n=$1; shift; ovs-vsctl --timeout=10 --db="unix:$(ovn_dir "$n")/db.sock" "$@"; }
ovn_flows() { ovs-ofctl --timeout=5 dump-flows "unix:$(ovn_dir "$1")/ovd-phy.mgmt"; }
ovn_vm_ip() { echo "203.0.113.$1"; }
ovn_ch_ip() { echo "192.0.2.$1"; }

# ovn_tunnel_port N PEER: the name of chassis N's tunnel port to chassis PEER.
ovn_tunnel_port() {
  ovn_vsctl "$1" --bare --columns=name find Interface type=geneve "options:remote_ip=$(ovn_ch_ip "$2")"
}

# ovn_up_count: tunnels listed as up, over all chassis (6 when all are).
ovn_up_count() {
  local n c=0 k
  for n in 1 2 3; do
    k=$(ovn_show "$n" 2>/dev/null | grep -c '^  Status: *up$') || true
    c=$((c + k))
  done
  echo "$c"
}
# ovn_listed_count: tunnels ovnsecd lists at all, over all chassis.
ovn_listed_count() {
  local n c=0 k
  for n in 1 2 3; do
    k=$(ovn_show "$n" 2>/dev/null | grep -c '^Interface name: ') || true
    c=$((c + k))
  done
  echo "$c"
}
# ovn_esp_rules N: ESP steering rules on chassis N's ovd-phy (0 = plaintext).
ovn_esp_rules() { ovn_flows "$1" 2>/dev/null | grep -c 'nw_proto=50' || true; }

# ovn_wait SECONDS WANT FUNC ARGS...: poll FUNC every 0.2 s until it prints WANT.
ovn_wait() {
  local end=$(($(date +%s) + $1)) want=$2
  shift 2
  while :; do
    [ "$("$@")" = "$want" ] && return 0
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.2
  done
}

# ovn_set_ipsec true|false: switch OVN's ipsec option and wait until the
# data path follows: every tunnel up and ESP rules on ovd-phy (true), or no
# tunnel and no ESP rule (false); then until vm1 reaches vm2. Prints the
# seconds the switch took.
ovn_set_ipsec() {
  local want=$1 t0 n
  t0=$(date +%s.%N)
  ovn_nbctl set nb_global . "ipsec=$want" || { bench_log "ovn-nbctl set nb_global . ipsec=$want failed"; return 1; }
  if [ "$want" = true ]; then
    ovn_wait 60 6 ovn_up_count || { bench_log "ipsec=true: only $(ovn_up_count) of 6 tunnels up after 60 s"; return 1; }
    for n in 1 2; do
      [ "$(ovn_esp_rules "$n")" -gt 0 ] || { bench_log "ipsec=true: no ESP rule on ch$n's ovd-phy"; return 1; }
    done
  else
    ovn_wait 30 0 ovn_listed_count || { bench_log "ipsec=false: ovnsecd still lists $(ovn_listed_count) tunnels after 30 s"; return 1; }
    for n in 1 2; do
      ovn_wait 10 0 ovn_esp_rules "$n" || { bench_log "ipsec=false: ESP rules left on ch$n's ovd-phy"; return 1; }
    done
  fi
  bench_wait_ping ovd-vm1 "$(ovn_vm_ip 2)" || { bench_log "ipsec=$want: vm1 does not reach vm2"; return 1; }
  echo "$(date +%s.%N) $t0" | awk '{printf "%.1f\n", $1 - $2}'
}

# ovn_iperf_tcp SECONDS: one iperf3 TCP run vm1 -> vm2 (1 stream) through
# bench_iperf, with the ovs-vswitchd of ch1 and ch2 as its "tunnel" pids.
# Prints "mbps retransmits vswitchd% ovnsecd% busy%": CPU of both chassis'
# ovs-vswitchd and of both ovnsecd over the run, in % of one core.
ovn_iperf_tcp() {
  local secs=$1 o0 o1 t0 t1 line
  local vs=("$(ovn_pid 1 ovs-vswitchd)" "$(ovn_pid 2 ovs-vswitchd)")
  local os=("$(ovn_pid 1 ovnsecd)" "$(ovn_pid 2 ovnsecd)")
  o0=$(bench_ticks "${os[@]}")
  t0=$(date +%s.%N)
  line=$(bench_iperf ovd-vm1 "$(ovn_vm_ip 1)" "$(ovn_vm_ip 2)" 1 "$secs" "${vs[@]}") || return 1
  t1=$(date +%s.%N)
  o1=$(bench_ticks "${os[@]}")
  # shellcheck disable=SC2086 # split the run line
  set -- $line
  awk -v m="$1" -v r="$2" -v v="$3" -v b="$4" -v o0="$o0" -v o1="$o1" -v hz="$(getconf CLK_TCK)" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "%s %s %s %.0f %s\n", m, r, v, (o1 - o0) / hz / (t1 - t0) * 100, b }'
}

# ovn_median: run lines "mode mbps rtx vs% os% busy% rtt" on stdin, one
# mode -> "mbps min max rtx vs% os% busy% rtt n" of the run with the median
# throughput (lower median for an even count), or "none".
ovn_median() {
  sort -n -k2,2 | awk '
    NF == 7 && $2 ~ /^[0-9.]+$/ { n++; m[n] = $0; v[n] = $2 }
    END {
      if (n == 0) { print "none"; exit }
      split(m[int((n + 1) / 2)], c, " ")
      print c[2], v[1], v[n], c[3], c[4], c[5], c[6], c[7], n
    }'
}

# ovn_counters: "c1 c3 c2' c4'" for the direction ch1 -> ch2: packets ch1
# sent into its engine, ESP ch1's engine put on the wire, ESP ch2 took
# from the wire into its engine, packets ch2's engine passed on opened.
# OpenFlow counters lag the data path by up to a revalidator pass; take
# them a second or two after the traffic stopped.
ovn_counters() {
  local f1 f2
  f1=$(ovn_flows 1) || return 1
  f2=$(ovn_flows 2) || return 1
  {
    printf '%s\n' "$f1" | ovn_flow_packets "$OVN_COOKIE_TO_ENGINE" "nw_dst=$(ovn_ch_ip 2)"
    printf '%s\n' "$f1" | ovn_flow_packets "$OVN_COOKIE_ESP_OUT" "nw_dst=$(ovn_ch_ip 2)"
    printf '%s\n' "$f2" | ovn_flow_packets "$OVN_COOKIE_ESP_IN" "nw_src=$(ovn_ch_ip 1)"
    printf '%s\n' "$f2" | ovn_flow_packets "$OVN_COOKIE_OPENED" "nw_src=$(ovn_ch_ip 1)"
  } | paste -s -d ' ' -
}
# ovn_flow_packets COOKIE MATCH: n_packets of the flows (stdin) with the
# cookie whose match holds MATCH as a whole field.
ovn_flow_packets() {
  awk -v ck="cookie=$1," -v m="$2" '
    index($0, ck) {
      line = $0; gsub(/ actions=.*/, "", line); gsub(/ /, ",", line); line = line ","
      if (index(line, "," m ",")) { sub(/.*n_packets=/, ""); sub(/,.*/, ""); s += $0 }
    }
    END { print s + 0 }'
}

# ovn_engine_drops N: "reason=count ..." of chassis N's ESP engine (all
# peers, since ovnsecd started), "none" without any.
ovn_engine_drops() {
  local d
  d=$(ovn_show "$1" 2>/dev/null | sed -n 's/^  ESP engine drops (all peers): //p' | head -n 1)
  echo "${d:-none}"
}
# ovn_drops_diff BEFORE AFTER: "reason=+n ..." of the reasons that grew, or "none".
ovn_drops_diff() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, "="); was[kv[1]] = kv[2] }
    n = split(b, y, " "); out = ""
    for (i = 1; i <= n; i++) {
      split(y[i], kv, "=")
      if (kv[1] == "none") continue
      d = kv[2] - was[kv[1]]
      if (d > 0) out = out (out == "" ? "" : " ") kv[1] "=+" d
    }
    print (out == "" ? "none" : out)
  }'
}

# ovn_udp_rcvbuf_errors NS: UDP datagrams dropped for a full socket
# receive buffer in NS so far (/proc/net/snmp Udp RcvbufErrors).
ovn_udp_rcvbuf_errors() {
  # shellcheck disable=SC2016 # an awk program
  ip netns exec "$1" awk '$1 == "Udp:" { if (!h) { for (i = 2; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c + 0 }' /proc/net/snmp
}

# ovn_sock_drops N: "iface=drops ..." of ovs-vswitchd's AF_PACKET sockets
# in chassis N (ss skmem d: packets the kernel dropped because vswitchd
# did not read its socket in time), or "none".
ovn_sock_drops() {
  local d
  d=$(ip netns exec "ovd-ch$1" ss -0 -m -p -n 2>/dev/null | awk '/ovs-vswitchd/ {
      ifc = $4; sub(/^\*:/, "", ifc)
      if (match($0, /,d[0-9]+\)/)) { v = substr($0, RSTART + 2, RLENGTH - 3); s[ifc] += v }
    }
    END { for (k in s) printf "%s=%d ", k, s[k] }')
  d=${d% }
  echo "${d:-none}"
}
# ovn_tap_drops N: packets chassis N's kernel dropped on the way to
# ovnsecd (TX dropped of the engine tap ovnsec0: its queue was full).
ovn_tap_drops() {
  ip -n "ovd-ch$1" -s link show ovnsec0 2>/dev/null | awk '/^ *TX:/ { getline; print $4 + 0; found = 1 } END { if (!found) print 0 }'
}

# ovn_sum_plus [KEY...]: the sum of the "key=+n" tokens on stdin (from
# ovn_drops_diff) whose key is one of KEY, or of all without KEY.
ovn_sum_plus() {
  awk -v keys="$*" 'BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) want[k[i]] = 1 }
    { for (i = 1; i <= NF; i++) if (split($i, kv, "=+") == 2 && (n == 0 || kv[1] in want)) s += kv[2] }
    END { print s + 0 }'
}

# ovn_loss_by_rekey TAG N PORT: "a b c d": datagrams lost in the 1 s
# intervals of the server's report that saw a Child SA rekey installed on
# chassis N's tunnel PORT (a, over b intervals), and in the others (c, over
# d intervals). Rekeys come from ovnsecd's log timestamps.
ovn_loss_by_rekey() {
  /usr/bin/python3 - "$BENCH_WORK/$1-server.json" "$(ovn_dir "$2")/ovnsecd.log" "$3" <<'PY'
import datetime, json, re, sys
j = json.load(open(sys.argv[1]))
t0 = j["start"]["timestamp"]["timesecs"]
marks = []
for line in open(sys.argv[2], errors="replace"):
    if 'msg="Child SA installed"' in line and "event=rekeyed" in line and " tunnel=%s " % sys.argv[3] in line:
        m = re.match(r"time=(\S+)", line)
        if m:
            marks.append(datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp() - t0)
a = b = c = d = 0
for iv in j.get("intervals", []):
    s = iv["sum"]
    lo, hi, lost = s["start"], s["end"], s.get("lost_packets", 0)
    if any(lo <= x < hi for x in marks):
        a += lost; b += 1
    else:
        c += lost; d += 1
print(a, b, c, d)
PY
}

# ovn_rekeys N PORT: Child SA rekeys ovnsecd on chassis N has installed on
# tunnel PORT so far (log lines "Child SA installed ... event=rekeyed").
ovn_rekeys() {
  grep -c "msg=\"Child SA installed\".* tunnel=$2 .*event=rekeyed" "$(ovn_dir "$1")/ovnsecd.log" || true
}
# ovn_ike_sas N PORT: IKE SAs established for tunnel PORT so far (an IKE
# SA rekey or re-establishment adds one).
ovn_ike_sas() {
  grep -c "msg=\"ike: IKE SA established\".* peer=$2-" "$(ovn_dir "$1")/ovnsecd.log" || true
}

# ovn_forget PID...: drop ended pids from BENCH_PIDS (never signal a reused pid).
ovn_forget() {
  local keep=() p q drop
  for p in "${BENCH_PIDS[@]}"; do
    drop=0
    for q in "$@"; do [ "$p" = "$q" ] && drop=1; done
    [ "$drop" = 1 ] || keep+=("$p")
  done
  BENCH_PIDS=("${keep[@]}")
}

# ovn_udp_start TAG MBPS: iperf3 UDP vm1 -> vm2 at MBPS Mbit/s (1300-byte
# datagrams: no fragment at the VM MTU 1397) with a one-off server on port
# 5202 whose JSON is kept, and a 10 ms ping vm1 -> vm2, both until
# ovn_udp_stop. Files: $BENCH_WORK/TAG-{server.json,client.json,ping.txt}.
OVN_UDP_CLIENT="" OVN_UDP_SERVER="" OVN_UDP_PING=""
ovn_udp_start() {
  local tag=$1 rate=$2 w=$BENCH_WORK
  ip netns exec ovd-vm2 iperf3 -s -p 5202 -1 -J -B "$(ovn_vm_ip 2)" >"$w/$tag-server.json" 2>&1 &
  OVN_UDP_SERVER=$!
  BENCH_PIDS+=("$OVN_UDP_SERVER")
  for _ in $(seq 30); do
    ip netns exec ovd-vm2 ss -Huln 'sport = :5202' 2>/dev/null | grep -q . && break
    ip netns exec ovd-vm2 ss -Htln 'sport = :5202' 2>/dev/null | grep -q . && break
    sleep 0.1
  done
  ip netns exec ovd-vm1 ping -D -n -i 0.01 -W 1 "$(ovn_vm_ip 2)" >"$w/$tag-ping.txt" 2>&1 &
  OVN_UDP_PING=$!
  BENCH_PIDS+=("$OVN_UDP_PING")
  ip netns exec ovd-vm1 iperf3 -c "$(ovn_vm_ip 2)" -p 5202 -B "$(ovn_vm_ip 1)" -u -b "${rate}M" -l 1300 \
    -t 3600 -J >"$w/$tag-client.json" 2>&1 &
  OVN_UDP_CLIENT=$!
  BENCH_PIDS+=("$OVN_UDP_CLIENT")
}

# ovn_udp_stop TAG: interrupt the client (the server then reports what it
# received up to that moment), stop the ping 0.3 s later, and print
# "lost total ping_lost ping_sent": datagrams lost (gaps in the sequence
# numbers the server saw) and sent up to the last one received; pings
# without a reply, the last 0.2 s of pings (maybe still in flight) left
# out. Fails when the client died early or the server wrote no result.
ovn_udp_stop() {
  local tag=$1 w=$BENCH_WORK alive=1
  kill -0 "$OVN_UDP_CLIENT" 2>/dev/null || alive=0
  kill -INT "$OVN_UDP_CLIENT" 2>/dev/null || true
  wait "$OVN_UDP_CLIENT" 2>/dev/null || true
  sleep 0.3
  kill -INT "$OVN_UDP_PING" 2>/dev/null || true
  wait "$OVN_UDP_PING" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$OVN_UDP_SERVER" 2>/dev/null || break; sleep 0.1; done
  bench_kill "$OVN_UDP_SERVER"
  ovn_forget "$OVN_UDP_CLIENT" "$OVN_UDP_PING" "$OVN_UDP_SERVER"
  if [ "$alive" = 0 ]; then
    bench_log "$tag: iperf3 UDP client exited early: $(tr '\n' ' ' <"$w/$tag-client.json" | cut -c1-300)"
    return 1
  fi
  local udp ping
  udp=$(/usr/bin/python3 -c '
import json, sys
try:
    j = json.load(open(sys.argv[1]))
    s = j["end"]["sum"]
    print(s["lost_packets"], s["packets"])
except Exception as e:
    sys.exit("no UDP result in %s: %s" % (sys.argv[1], e))
' "$w/$tag-server.json") || {
    bench_log "$tag: $(tr '\n' ' ' <"$w/$tag-server.json" | cut -c1-300)"
    return 1
  }
  ping=$(awk '
    / packets transmitted/ { sent = $1 }
    /bytes from .*icmp_seq=/ { for (i = 1; i <= NF; i++) if ($i ~ /^icmp_seq=/) { split($i, q, "="); got[q[2]] = 1 } }
    END {
      n = sent - 20; lost = 0
      for (s = 1; s <= n; s++) if (!(s in got)) lost++
      if (n < 0) n = 0
      print lost, n
    }' "$w/$tag-ping.txt")
  echo "$udp $ping"
}
