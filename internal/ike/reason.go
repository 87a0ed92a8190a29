// Reason codes: why a peer is not up, as a stable machine-readable code
// (metrics labels, JSON) beside the text for people. Every site that
// records a reason sets both at once; nothing parses the text.

package ike

import (
	"errors"
	"fmt"

	"github.com/ovnsec/ovnsec/internal/ike/message"
)

// ReasonCode classifies PeerStatus.Reason. The values are stable
// snake_case words: Prometheus labels and JSON consumers key on them, so
// a code is never renamed, only added.
type ReasonCode string

// The reason codes. Each says what happened and where to look.
const (
	// ReasonNone: nothing went wrong; the IKE SA is established.
	ReasonNone ReasonCode = "none"
	// ReasonNotConfigured: the engine has no peer of that name.
	ReasonNotConfigured ReasonCode = "not_configured"
	// ReasonNotConnected: we initiate and have not started yet ("not
	// connected yet").
	ReasonNotConnected ReasonCode = "not_connected"
	// ReasonWaitingForPeer: the peer initiates and has not yet ("waiting
	// for the peer to initiate").
	ReasonWaitingForPeer ReasonCode = "waiting_for_peer"
	// ReasonNegotiating: IKE_SA_INIT or IKE_AUTH is in progress and nothing
	// failed before it.
	ReasonNegotiating ReasonCode = "negotiating"
	// ReasonPeerSilent: the peer stopped answering: retransmissions of a
	// request exhausted (IKE_SA_INIT, IKE_AUTH, liveness check, any later
	// exchange), or no IKE_AUTH within 30 s of our IKE_SA_INIT answer.
	ReasonPeerSilent ReasonCode = "peer_silent"
	// ReasonNoProposal: no common IKE proposal, either way: the peer sent
	// NO_PROPOSAL_CHOSEN, we found none of its proposals acceptable, or it
	// asks for a DH group we do not offer.
	ReasonNoProposal ReasonCode = "no_proposal"
	// ReasonAuthFailed: our check of the peer's AUTH failed: pre-shared
	// key mismatch, signature that does not verify, or another method
	// than ours (PSK against certificates).
	ReasonAuthFailed ReasonCode = "auth_failed"
	// ReasonCertUntrusted: the peer's certificate is not acceptable: not
	// signed by the configured CA, not the pinned certificate, expired or
	// not yet valid, unparsable, missing, or not usable for IKE (keyUsage,
	// extendedKeyUsage).
	ReasonCertUntrusted ReasonCode = "cert_untrusted"
	// ReasonIdentityMismatch: the peer is not who we expect, or expects
	// someone else: its ID is not the remote name, its certificate's CN or
	// SAN does not name it, or it asked for an ID that is not ours.
	ReasonIdentityMismatch ReasonCode = "identity_mismatch"
	// ReasonPeerRefusedAuth: the peer sent AUTHENTICATION_FAILED (its
	// check of us failed; its own status says why).
	ReasonPeerRefusedAuth ReasonCode = "peer_refused_auth"
	// ReasonPeerError: the peer answered IKE_SA_INIT or IKE_AUTH with an
	// error notification that has no finer code here (the text names it).
	ReasonPeerError ReasonCode = "peer_error"
	// ReasonProtocolError: the peer's message breaks the protocol: a
	// payload missing, a proposal or key share it cannot send, a bad
	// nonce, a COOKIE demanded again and again.
	ReasonProtocolError ReasonCode = "protocol_error"
	// ReasonChildFailed: the IKE SA is up but a Child SA could not be
	// negotiated (TS_UNACCEPTABLE, no ESP proposal, mode, PFS, ...).
	ReasonChildFailed ReasonCode = "child_failed"
	// ReasonDeleted: the IKE SA was deleted, locally or by the peer, or
	// the peer was removed.
	ReasonDeleted ReasonCode = "deleted"
	// ReasonLifetimeExpired: the IKE SA reached its hard lifetime without
	// a rekey replacing it.
	ReasonLifetimeExpired ReasonCode = "lifetime_expired"
	// ReasonInternalError: a failure on our side: randomness, encoding,
	// signing with our key, key derivation.
	ReasonInternalError ReasonCode = "internal_error"
)

// reasonCodes is every reason code, in the order ReasonCodes returns
// them; Stats.AuthFailures is indexed by it. Never modified.
var reasonCodes = [...]ReasonCode{
	ReasonNone, ReasonNotConfigured, ReasonNotConnected, ReasonWaitingForPeer, ReasonNegotiating,
	ReasonPeerSilent, ReasonNoProposal, ReasonAuthFailed, ReasonCertUntrusted, ReasonIdentityMismatch,
	ReasonPeerRefusedAuth, ReasonPeerError, ReasonProtocolError, ReasonChildFailed, ReasonDeleted,
	ReasonLifetimeExpired, ReasonInternalError,
}

// numReasonCodes is the number of reason codes.
const numReasonCodes = len(reasonCodes)

// ReasonCodes returns every reason code, for metrics to register their
// labels before the first failure. The slice is the caller's.
func ReasonCodes() []ReasonCode { return append([]ReasonCode(nil), reasonCodes[:]...) }

// reasonIndex is code's position in ReasonCodes.
func reasonIndex(code ReasonCode) (int, bool) {
	for i, c := range reasonCodes {
		if c == code {
			return i, true
		}
	}
	return 0, false
}

// failure is a recorded reason: the code and the text together. The zero
// value is "no reason".
type failure struct {
	code ReasonCode
	text string
}

// reasonError is an error that carries its reason code: the checks of
// what the peer sent return it, and the site that records the failure
// takes the code from it.
type reasonError struct{ failure }

func (e *reasonError) Error() string { return e.text }

// reasonf returns a reasonError with code and a formatted text.
func reasonf(code ReasonCode, format string, args ...any) error {
	return &reasonError{failure{code, fmt.Sprintf(format, args...)}}
}

// failureOf records err: its text, and the code of the reasonError it
// wraps or def.
func failureOf(def ReasonCode, err error) failure {
	var re *reasonError
	if errors.As(err, &re) {
		def = re.code
	}
	return failure{def, err.Error()}
}

// notifyCode is the code for an error notification from the peer that
// ended an IKE SA negotiation.
func notifyCode(t message.NotifyType) ReasonCode {
	switch t {
	case message.NO_PROPOSAL_CHOSEN:
		return ReasonNoProposal
	case message.AUTHENTICATION_FAILED:
		return ReasonPeerRefusedAuth
	}
	return ReasonPeerError
}
