#!/usr/bin/env bash
# install-deps.sh: install the Debian packages the tests and the demo need.
# Idempotent: packages already present are skipped without touching apt.
set -euo pipefail

# --- libreswan (issue 15) -------------------------------------------------
# (Before the main block below, which exits early when its packages are
# present.)
# Debian's libreswan conflicts with strongswan-starter and
# strongswan-libcharon (both ship /usr/sbin/ipsec), so the tests that need
# pluto run it unpacked into a private prefix: `apt-get download` +
# `dpkg -x`, its library dependencies installed normally. The tests run
# pluto in a private mount namespace where that prefix's /usr/libexec/ipsec
# and /usr/sbin/ipsec are bind-mounted (pluto execs addconn at a fixed
# path); see test/netns/pluto.go. openvswitch-ipsec is the real
# ovs-monitor-ipsec the comparison and mixed-cluster tests run.
LIBRESWAN_ROOT=${OVNSEC_LIBRESWAN_ROOT:-/opt/ovnsec-libreswan}
LSW_PKGS=(
  openvswitch-ipsec libnss3-tools libnss3 libnspr4
  dns-root-data bind9-host libcap-ng0 libcurl3-nss libevent-core-2.1-7
  libevent-pthreads-2.1-7 libldap-2.5-0 libldns3 libunbound8 libaudit1 libpam0g
)
lsw_missing=()
for p in "${LSW_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    lsw_missing+=("$p")
  fi
done
if [ "${#lsw_missing[@]}" -gt 0 ] || [ ! -x "$LIBRESWAN_ROOT/usr/libexec/ipsec/pluto" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install libreswan's dependencies and unpack it into $LIBRESWAN_ROOT" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ "${#lsw_missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${lsw_missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -q
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${lsw_missing[@]}"
  fi
  if [ ! -x "$LIBRESWAN_ROOT/usr/libexec/ipsec/pluto" ]; then
    lsw_tmp=$(mktemp -d)
    # apt-get download writes as the _apt user where it can; a private
    # directory it cannot enter only costs a warning.
    (cd "$lsw_tmp" && apt-get -o DPkg::Lock::Timeout=600 download libreswan) || {
      apt-get -o DPkg::Lock::Timeout=600 update -q
      (cd "$lsw_tmp" && apt-get -o DPkg::Lock::Timeout=600 download libreswan)
    }
    rm -rf "$LIBRESWAN_ROOT.new"
    dpkg -x "$lsw_tmp"/libreswan_*.deb "$LIBRESWAN_ROOT.new"
    rm -rf "$LIBRESWAN_ROOT" "$lsw_tmp"
    mv "$LIBRESWAN_ROOT.new" "$LIBRESWAN_ROOT"
    echo "install-deps: libreswan $("$LIBRESWAN_ROOT/usr/libexec/ipsec/pluto" --version 2>&1 | head -1) unpacked into $LIBRESWAN_ROOT"
  fi
fi
# --- end of libreswan block -----------------------------------------------


PKGS=(
  openvswitch-switch openvswitch-common openvswitch-pki python3-openvswitch
  ovn-central ovn-host
  strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins
  iperf3 tcpdump iproute2 openssl curl iputils-ping ethtool
  iptables
  systemd # systemd-analyze, for the installed units in test/packaging
  prometheus # promtool and the server, for the metrics tests and deploy/prometheus
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
