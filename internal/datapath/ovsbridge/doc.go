// Package ovsbridge attaches ovnsec's native ESP engine to Open vSwitch's
// userspace (netdev) datapath as a side-car port on br-phy, the bridge that
// holds the underlay IP: the engine sits beside OVS's data path, not in
// line between br-phy and the NIC, so OVS still owns the NIC and a stopped
// engine fails closed for protected peers only.
//
// OVS's native tunnelling sends every encapsulated packet through br-phy's
// OpenFlow table as in_port=LOCAL. Rules computed here (Rules) steer only
// protected traffic through one port owned by the engine (a TAP, or a veth
// pair): tunnel packets to a protected peer go LOCAL -> engine -> NIC, ESP
// (and ESP-in-UDP) from the peer goes NIC -> engine -> LOCAL, where OVS pops
// the tunnel as usual, and plaintext tunnel packets from a protected peer
// are dropped by OVS and counted. ARP, IKE on UDP 500 and management
// traffic keep using NORMAL. br-phy runs with fail_mode=secure and ovnsec
// owns its whole table, so after an ovs-vswitchd restart nothing passes
// until the rules are back; a dead engine leaves protected traffic steered
// to a port nobody reads: fail closed.
//
// Wiring, as ovnsecd does it:
//
//	att, err := ovsbridge.Attach(ctx, ovsbridge.Config{Bridge: "br-phy", NIC: "eth0"})
//	go att.Run(ctx)                       // re-installs the table when it goes missing
//	tap, err := ovsbridge.OpenTAP("ovnsec0", "")
//	loop, err := ovsbridge.NewLoop(ovsbridge.LoopConfig{Device: tap, Hook: engine})
//	go loop.Run(ctx)
//	// for every change of the protected peers, keep both in step (loop
//	// first, so it knows a new peer before frames for it are steered):
//	loop.SetPeers(policies)
//	att.SetPolicies(ctx, policies)
//	mtu, err := att.OverlayMTU(policy)     // report; OVS drops oversized frames silently
//
// The faster engine port is a veth pair the engine reads and writes in
// batches: Config.Port = PortVeth, and OpenEngine(PortVeth, ...) instead of
// OpenTAP. With LoopConfig.Wire = OpenWire(NIC) the engine also writes
// outbound ESP straight onto the NIC instead of back through br-phy, and
// enforces itself what OVS's to-NIC rules would (only ESP to the peer, or
// ESP-in-UDP from our 4500 to the peer's NAT-T port, Policy.NATTPort).
// Enable Wire only if Attachment.CheckDirect returns nil: with a VLAN tag,
// a bond or a DPDK NIC port, OVS would have tagged or balanced those frames
// on output. See docs/PERFORMANCE-bridge.md.
//
// The engine implements Hook; Passthrough turns frames around unchanged and
// is for tests and the bench only (with ModeBenchPassthrough policies, which
// must never be derived from OVSDB configuration).
package ovsbridge
