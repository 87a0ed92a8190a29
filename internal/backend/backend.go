// Package backend defines the one interface through which the reconciler
// drives an IPsec implementation (native engine, strongSwan over VICI,
// libreswan). The reconciler does not know which one it talks to.
package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// Backend protects tunnels. Every method must be safe to call again after
// an error; the reconciler retries with back-off.
type Backend interface {
	// Name is the --ike-daemon value, e.g. "strongswan".
	Name() string

	// Ensure makes the backend protect t (a CONFIGURED tunnel) at exactly
	// t.Version: it loads credentials and connections for that version,
	// unloads any other version of the same tunnel name and initiates.
	// It is idempotent: calling it again for an unchanged, healthy tunnel
	// must not disturb established SAs.
	Ensure(ctx context.Context, t tunnel.Tunnel) error

	// Remove tears down every connection the backend holds for the tunnel
	// (interface) name, whatever its version.
	Remove(ctx context.Context, name string) error

	// Loaded lists the tunnel names the backend currently holds
	// configuration for, so that the reconciler can remove leftovers (for
	// example after ovnsecd restarted with --no-restart-ike-daemon).
	Loaded(ctx context.Context) ([]string, error)

	// Status reports the backend's view of every tunnel it knows about,
	// keyed by tunnel name. A tunnel missing from the map is not loaded.
	Status(ctx context.Context) (map[string]TunnelStatus, error)

	// Report answers the backend-specific unixctl commands
	// ("ipsec/status", "xfrm/policies", "xfrm/state").
	Report(ctx context.Context, command string) (string, error)

	// Close releases the backend. With cleanup it first removes every
	// connection and credential it loaded; without it, SAs and steering
	// state are left in place (exit --no-cleanup, SIGTERM).
	Close(ctx context.Context, cleanup bool) error
}

// Phase summarises a tunnel's protection state.
type Phase string

const (
	PhaseUp         Phase = "up"         // IKE SA and every Child SA established
	PhaseConnecting Phase = "connecting" // loaded, negotiation under way
	PhaseDown       Phase = "down"       // loaded but not established; Reason says why
	PhaseNotLoaded  Phase = "not loaded" // backend holds nothing for it
)

// TunnelStatus is the backend's read-only view of one tunnel.
type TunnelStatus struct {
	Name    string
	Version int
	Phase   Phase
	// Reason explains a Phase other than PhaseUp in words an operator can
	// act on ("IKE_SA established but the kernel refused the Child SA:
	// Function not implemented", "peer silent for 30s", ...).
	Reason string
	// Code is Reason's stable code (metrics, JSON).
	Code Code
	// Blocked: the backend holds no SAs for the tunnel but drops its
	// packets (backend.Guard); Phase is then PhaseDown.
	Blocked bool
	// IKE and Children describe the SAs as data (nil/empty when the
	// backend does not report them); Details render them as text.
	IKE      *IKESAStatus
	Children []ChildSAStatus
	// Conns lists the backend's connections for the tunnel, with a one-line
	// state each, in the shape "ipsec/status" prints.
	Conns []ConnStatus
	// Details are extra lines for tunnels/show (SPIs, algorithms, counters).
	Details []string
}

// ConnStatus is one IKE connection (for example "gnv0-in-1").
type ConnStatus struct {
	Name   string
	Active bool   // a Child SA with an ESP SPI exists
	Line   string // one-line description as printed by ipsec/status
}

// PartialError is implemented by errors that Ensure returns when the tunnel
// WAS applied but part of its configuration could not be (for example an
// ipsec_* option the backend does not support). The reconciler records the
// tunnel as applied, shows the error as a warning and does not retry.
type PartialError interface {
	error
	Partial() bool
}

// UnsupportedOptionsError is the PartialError of every backend: the tunnel
// was applied without the listed options (ipsec_* custom options the
// backend does not honour, or values it could not use).
type UnsupportedOptionsError struct {
	Tunnel  string
	Backend string   // the --ike-daemon name
	Options []string // each as the operator wrote it, with why if known
}

func (e *UnsupportedOptionsError) Error() string {
	return fmt.Sprintf("tunnel %s: the %s backend ignored %s", e.Tunnel, e.Backend, strings.Join(e.Options, "; "))
}

// Partial marks the tunnel as applied.
func (e *UnsupportedOptionsError) Partial() bool { return true }

// IsPartial reports whether err (or an error it wraps) is a PartialError.
func IsPartial(err error) bool {
	var p PartialError
	return errors.As(err, &p) && p.Partial()
}

// Guard is implemented by backends that can keep a tunnel's packets from
// crossing in plaintext independently of its SAs. It is how ovnsec fails
// closed by construction: the reconciler hands the backend, at the start of
// every pass and before anything else, every tunnel that requires IPsec
// (CONFIGURED ones and INVALID ones alike), and the backend drops their
// tunnel packets unless SAs protect them. Ensure and Remove then only add
// or take away SAs; whatever they fail at, the guard stays, so a tunnel is
// never left in plaintext because configuring it went wrong.
type Guard interface {
	// Guard replaces the set of guarded tunnels with ts. From its return,
	// tunnel packets to and from the remote of every tunnel in ts are
	// dropped unless SAs protect them; a tunnel no longer in ts is
	// unguarded (its SAs, if any, still protect it until Remove).
	//
	// refused names the tunnels of ts the backend cannot guard, each with
	// the reason (a remote_ip that is not an address, say); the others are
	// guarded. err means the new set could not be installed (the previous
	// one stays in force); the backend installs it again on its next call.
	Guard(ctx context.Context, ts []tunnel.Tunnel) (refused map[string]error, err error)
}
