#!/usr/bin/env bash
# install-deps.sh: install the Debian packages the tests and the demo need.
# Idempotent: packages already present are skipped without touching apt.
set -euo pipefail

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
