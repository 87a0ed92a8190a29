// Package libreswan implements backend.Backend with a running libreswan
// pluto, configured the way ovs-monitor-ipsec's LibreSwanHelper
// configures it, so that ovnsecd replaces ovs-monitor-ipsec on hosts that
// run libreswan (OpenShift / ovn-kubernetes) and both can be compared
// line by line.
//
// Files. --ipsec-conf and --ipsec-secrets are rewritten whole from the
// tunnels held: the same conn names ("<if>-in-<v>", "<if>-out-<v>",
// "<if>-<v>" for gre), the same keywords (authby=secret with an
// "%any <remote_ip> : PSK" line; leftid/rightid=@<CN>, leftcert=
// "ovs_certkey_<CN>", rightcert="ovs_cert_<peer CN>" or rightca=%same),
// ipsec_* options passed through, and the "prevent_unencrypted_*" drop
// conns of ipsec_skb_mark. When --root-ipsec-conf names another file
// (which includes ours), every conn carries its base and crypto lines and
// every command reads the root file. Values from the database that could
// add a line or a keyword to the file are refused, and so are options
// that would change what a conn protects.
//
// NSS. Certificates are imported with certutil and pk12util under
// upstream's nicknames, after removing whatever differs under the same
// nickname (nss.go).
//
// Commands. `ipsec --version` decides the command set: `ipsec auto
// --add|--start|--up|--delete` before libreswan 5, `ipsec --add|...` from
// 5 (which removed auto). Every command runs under --command-timeout with
// its output drained (runner.go).
//
// Reconciliation (refresh.go) is upstream's: "-in-" conns are added and
// left for the peer, "-out-" and gre conns started; every 15 seconds a
// conn loaded without a Child SA is brought up or, if it was started and
// still has none, deleted as defunct; conns no tunnel wants are deleted.
// Only conns this backend (or an earlier run) wrote are ever deleted:
// pluto may also serve other connections. A restarted pluto gets every
// conn back from the next pass or the reconciler's Ensure.
//
// Status comes from `ipsec status` (loaded conns, IKE and Child SA
// states; active = a Child SA with an ESP SPI) and, with --pluto-log,
// from pluto's log, which alone says why a Child SA is missing (the
// kernel refused it, the peer refused it, authentication failed).
package libreswan
