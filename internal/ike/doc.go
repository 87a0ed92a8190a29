// Package ike is ovnsec's IKEv2 engine (RFC 7296): it negotiates IKE SAs
// and ESP Child SAs with peers such as strongSwan and Libreswan, and hands
// the Child SAs (SPIs, keys, mode, encapsulation, selectors) to a
// ChildSAHandler that installs them in the ESP datapath.
//
//	e, err := ike.New(ike.Config{Local: addr, Handler: h})
//	go e.Run(ctx)
//	err = e.AddPeer(ike.Peer{Name: "ch2", Remote: ..., Auth: ..., LocalID: "ch1",
//		RemoteID: "ch2", Children: []ike.ChildConfig{{Name: "gnv"}}, Initiate: true})
//	st := e.Status("ch2") // State, SPIs, algorithms, NAT, children, Reason, Code
//
// # Structure
//
// One Engine owns two UDP sockets (IKE port 500 and NAT-T port 4500,
// transport.go). A reader goroutine per socket parses the IKE header
// (internal/ike/message) and looks the SA up by our SPI in a sync.Map;
// everything about one peer — its IKE SAs, half-open responder SAs and
// Child SAs — is guarded by that peer's mutex (peer.go), so peers never
// contend and there is no global lock on the receive path. Timers
// (retransmission, liveness, rekey, lifetimes, half-open expiry, NAT
// keepalives) go through the injected Clock. Child SA events are queued
// under the peer lock and delivered by one goroutine, in order, with no
// engine lock held.
//
// The stages, one file each: init.go (IKE_SA_INIT, NAT detection, cookies,
// half-open caps, INVALID_KE_PAYLOAD, key derivation), auth.go (IKE_AUTH with PSK or
// certificates, AUTH methods 1, 2, 9-11 and 14), child.go (Child SA
// proposals, traffic selector narrowing, transport mode, KEYMAT),
// create.go (CREATE_CHILD_SA: new children, child and IKE SA rekeying,
// PFS, collisions), info.go (INFORMATIONAL: deletes, liveness), sa.go
// (message IDs, window size 1, retransmission, duplicate requests, SK
// protection and RFC 7383 fragmentation), proposal.go (proposal strings in
// strongSwan notation and selection).
//
// # Failures
//
// Decode and authentication errors drop the packet and are counted
// (Engine.Stats); no input from the network panics (FuzzEngineReceive).
// When a peer is not up, PeerStatus.Reason says why in words, e.g. "peer
// silent: no answer to IKE_SA_INIT after 5 tries", "AUTHENTICATION_FAILED
// from peer", "peer ID "x" does not match expected y", "certificate not
// signed by the configured CA: ...", "peer certificate CN "x" is not the
// expected remote name "y"" (CA-signed mode requires CN = SAN DNS = remote
// name), "peer certificate "y" is not usable for IKE: its extendedKeyUsage
// ...", "NO_PROPOSAL_CHOSEN from peer in IKE_SA_INIT", "peer dead: no
// answer to liveness check after 5 tries". PeerStatus.Code classifies the
// reason with a stable ReasonCode (reason.go: peer_silent, auth_failed,
// cert_untrusted, identity_mismatch, no_proposal, ...) for metrics and
// JSON; every site that records a reason sets code and text together.
// PeerStatus.State and ChildStatus.State are enums (SAState, ChildState)
// whose text is the word the status shows.
//
// # Denial of service
//
// IKE_SA_INIT requests are taken only from configured peer addresses. A
// responder IKE SA waiting for IKE_AUTH ("half-open") is capped over all
// peers and per address (Config.HalfOpenMax, HalfOpenMaxPerAddr); past
// the caps requests are dropped and counted (Stats.HalfOpenFull). Above
// Config.HalfOpenLimit half-open SAs, and from an address that already
// has one, requests must carry a COOKIE (RFC 7296 §2.6, cookie.go: a
// versioned SHA-256 over Ni, IPi, SPIi and a secret that changes every
// minute on the engine's clock), checked before any Diffie-Hellman work.
// A request with the SPIi of an SA of the peer never makes another SA: it
// is answered with the stored response if it is a retransmission from
// where the first came, else dropped (Stats.InitReplays). Retransmitted
// requests on any SA are answered only to the address and port the SA is
// bound to (Stats.StrayRetransmits).
//
// # Limits
//
// Peers are identified by their IP address when they initiate (one peer
// per remote address). Identities are FQDNs or IP addresses (no DNs).
// Only AES-GCM-16 is
// negotiated, with HMAC-SHA2 PRFs and DH groups 14, 19 and 31. No EAP,
// MOBIKE, configuration payloads or IKE_INTERMEDIATE.
package ike
