// Package metrics exports ovnsecd's state as Prometheus metrics. A
// Collector reads the typed status at scrape time, never on the packet
// path: the reconciler's view of every tunnel (state, reason code, Child
// SAs with their ESP counters and drops, the same data as
// reconcile.Document), the native backend's counters (IKE engine, the ESP
// hook's and frame loop's drops, br-phy's plaintext drops by peer) and the
// expiry of the certificate files the tunnels use.
//
// Label sets come from the typed enums: backend.States() for
// ovnsec_tunnel_state, ike.ReasonCodes() for ovnsec_ike_auth_failures_total,
// drop.All() for ovnsec_datapath_drops_total; every such series exists
// from the first scrape, at zero.
//
// ESP counters are per Child SA and start at zero with every SA a rekey
// installs. The Collector exports one series per tunnel and direction
// (ovnsec_esp_packets_total{tunnel,direction}): the sum over the tunnel's
// current SAs plus the last values seen of the SAs it had before. That
// keeps the series few and stable (no SPI label churning with every rekey)
// and monotonic for as long as the tunnel exists; what an SA counted
// between the last scrape and its deletion is not seen (at most one
// scrape interval of traffic per rekey). A tunnel that disappears takes
// its series with it; one that comes back starts again at zero, which
// Prometheus' rate() treats as a counter reset.
//
// The strongSwan backend reports tunnel states and Child SA counters
// (from charon's list-sas) but no engine counters: the ovnsec_ike_*,
// ovnsec_datapath_drops_total and ovnsec_plaintext_dropped_total series
// exist with the native backend only.
package metrics
