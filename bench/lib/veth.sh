# shellcheck shell=bash disable=SC2034,SC2154 # sets the SYS_* arrays and <sys>_NAME/_CIPHER that run.sh declares and reads
# veth.sh: the baseline row: no tunnel, iperf3 straight over the veth pair
# bnch-veth-a <-> bnch-veth-b (kernel TSO/GRO, MTU 1500).

veth_NAME="plain veth (baseline)"
veth_CIPHER="none"

start_veth() {
  bench_ns_pair veth 198.51.100.1 198.51.100.2 28
  bench_iperf_server bnch-veth-b || return 1
  SYS_NS[veth]=bnch-veth-a SYS_SRC[veth]=198.51.100.1 SYS_DST[veth]=198.51.100.2 SYS_PIDS[veth]=""
  SYS_NOTE[veth]="MTU 1500, kernel TSO/GRO"
}
