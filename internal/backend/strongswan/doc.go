// Package strongswan implements backend.Backend by driving a running
// strongSwan charon over VICI (github.com/strongswan/govici): credentials
// with load-shared/load-key/load-cert, one IKE connection per tunnel with
// the CHILD_SAs ovs-monitor-ipsec would have configured, initiation, and
// status from list-sas plus charon's log stream.
//
// Layout. ovs-monitor-ipsec writes two ipsec.conf conns per UDP tunnel
// ("<if>-in-<v>", "<if>-out-<v>") with identical IKE parameters, which the
// stroke plugin merges into one peer config with two children. VICI does
// not merge, and charon as responder picks the peer config before looking
// at traffic selectors, so two IKE connections with the same identities
// would make the responder pick the wrong half. ovnsec therefore loads one
// IKE connection "<if>-<v>" per tunnel whose children carry the upstream
// names: "<if>-in-<v>" (local dynamic[udp/<port>], remote dynamic[udp]) and
// "<if>-out-<v>" (the reverse), or for gre the single child "<if>-<v>"
// (dynamic[gre]). Those child names are what ipsec/status reports.
//
// Initiation. To avoid IKE crossing streams (both ends initiating the same
// pair), Ensure initiates the "-out-" child (and the gre child) at once and
// the "-in-" child only when the peer has not brought it up within
// Config.PeerGrace, like ovs-monitor-ipsec's Libreswan reconciliation.
// Children use start_action=trap (ipsec.conf auto=route). Initiation never
// blocks (VICI initiate with timeout -1).
//
// Renewal. Certificates, keys and CA bundles are read through
// Config.Creds (internal/creds). A file renewed under the same path does
// not change the tunnel's version; the backend follows the store's change
// events and applies the tunnels that use the file again, which loads the
// renewed credentials and replaces the connection's configuration in
// place, without unloading it or terminating its SAs. A certificate and
// key that do not match (half a renewal) are not loaded; the previous pair
// stays in use and Status says why.
//
// charon restarts. Every call reconnects if the VICI session broke. A
// restarted charon has lost our connections and credentials: Status then
// reports the tunnel as PhaseNotLoaded ("charon holds no connection ...")
// and the reconciler's next Ensure reloads everything. That is the
// contract: PhaseNotLoaded from Status means "call Ensure again".
//
// charon must run with charon.plugins.kernel-netlink.set_proto_port_transport_sa
// = yes (ovs-monitor-ipsec's ovs.conf) for transport-mode SAs to carry the
// port selectors; this backend cannot set daemon settings over VICI.
package strongswan
