# shellcheck shell=bash disable=SC2034,SC2154 # sets the SYS_* arrays and <sys>_NAME/_CIPHER that run.sh declares and reads
# strongswan.sh: the strongSwan row. Debian's charon 5.9.8 with
# kernel-libipsec (userspace ESP on a TUN, ipsec0), tunnel mode, ESP-in-UDP
# on 4500 (encap = yes), AES-GCM-16-256 through the aesni plugin, IKEv2 PSK.
# The configuration: load_modular = no, kernel-libipsec before
# kernel-netlink (the first "kernel-ipsec" registered wins), inner
# hosts as /32 on lo. Each charon runs in the mount namespace of its own
# unshare with a private tmpfs on /run (charon's pidfile /run/charon.pid is
# compiled in), its own STRONGSWAN_CONF and its own vici socket.
# Underlay 198.51.100.49/.50, inner 203.0.113.33/.34.

sslib_NAME="strongSwan charon + kernel-libipsec"
sslib_CIPHER="ESP AES-GCM-16-256 (aesni)"

SSLIB_PLUGINS="random nonce aesni openssl aes gcm sha1 sha2 hmac kdf pem pkcs1 pkcs8 x509 pubkey constraints revocation socket-default kernel-libipsec kernel-netlink vici updown"

# sslib_conf DIR LOCAL REMOTE LOCAL_ID REMOTE_ID LOCAL_TS REMOTE_TS PSK
sslib_conf() {
  local d=$1
  mkdir -p "$d"
  cat >"$d/strongswan.conf" <<EOC
charon {
  load_modular = no
  load = $SSLIB_PLUGINS
  port = 500
  port_nat_t = 4500
  plugins {
    vici {
      socket = unix://$d/charon.vici
    }
  }
  filelog {
    bench {
      path = $d/charon.log
      default = 1
      ike = 1
      flush_line = yes
    }
  }
  syslog {
    identifier = charon-bnch
    daemon {
      default = -1
    }
  }
}
EOC
  cat >"$d/swanctl.conf" <<EOC
connections {
  bnch {
    version = 2
    local_addrs = $2
    remote_addrs = $3
    encap = yes
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = psk
      id = $4
    }
    remote {
      auth = psk
      id = $5
    }
    children {
      tun {
        mode = tunnel
        local_ts = $6
        remote_ts = $7
        esp_proposals = aes256gcm16
        start_action = none
      }
    }
  }
}
secrets {
  ike-bnch {
    id-1 = $4
    id-2 = $5
    secret = "$8"
  }
}
EOC
}

start_sslib() {
  bench_ns_pair ss 198.51.100.49 198.51.100.50 28
  local psk side ns d i
  psk=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  sslib_conf "$BENCH_WORK/ss-a" 198.51.100.49 198.51.100.50 bnch-a bnch-b 203.0.113.33/32 203.0.113.34/32 "$psk"
  sslib_conf "$BENCH_WORK/ss-b" 198.51.100.50 198.51.100.49 bnch-b bnch-a 203.0.113.34/32 203.0.113.33/32 "$psk"
  ip -n bnch-ss-a addr add 203.0.113.33/32 dev lo
  ip -n bnch-ss-b addr add 203.0.113.34/32 dev lo
  for side in a b; do
    ns=bnch-ss-$side d=$BENCH_WORK/ss-$side
    # ip netns exec, unshare (without --fork) and sh all exec, so $! ends
    # up being charon itself.
    STRONGSWAN_CONF="$d/strongswan.conf" ip netns exec "$ns" unshare -m --propagation private \
      sh -c "mount -t tmpfs bnch-run /run && exec /usr/lib/ipsec/charon" >"$d/charon.out" 2>&1 &
    BENCH_PIDS+=($!)
    SYS_PIDS[sslib]="${SYS_PIDS[sslib]:-} $!"
  done
  for side in a b; do
    d=$BENCH_WORK/ss-$side
    for _ in $(seq 50); do
      swanctl --stats --uri "unix://$d/charon.vici" >/dev/null 2>&1 && break
      sleep 0.1
    done
    swanctl --load-all --file "$d/swanctl.conf" --uri "unix://$d/charon.vici" >"$d/load.out" 2>&1 || {
      SYS_FAIL[sslib]="swanctl --load-all ($side) failed: $(tail -n 3 "$d/load.out" | tr '\n' ' ')"
      return 1
    }
  done
  d=$BENCH_WORK/ss-a
  timeout 20 swanctl --initiate --child tun --uri "unix://$d/charon.vici" >"$d/initiate.out" 2>&1 || {
    SYS_FAIL[sslib]="swanctl --initiate failed: $(grep -v '^\[' "$d/initiate.out" | tail -n 2 | tr '\n' ' ')"
    return 1
  }
  swanctl --list-sas --uri "unix://$d/charon.vici" 2>/dev/null | grep -q 'INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256' || {
    SYS_FAIL[sslib]="CHILD_SA not installed as TUNNEL-in-UDP with ESP:AES_GCM_16-256"
    return 1
  }
  SYS_NS[sslib]=bnch-ss-a SYS_SRC[sslib]=203.0.113.33 SYS_DST[sslib]=203.0.113.34
  bench_wait_ping bnch-ss-a 203.0.113.34 || { SYS_FAIL[sslib]="no ping through libipsec"; return 1; }
  bench_iperf_server bnch-ss-b || return 1
  SYS_NOTE[sslib]="strongSwan $(dpkg-query -W -f='${Version}' strongswan-charon 2>/dev/null), TUN ipsec0 $(bench_tun_info bnch-ss-a ipsec0), IKEv2 PSK, aes256gcm16-prfsha256-x25519"
}
