// Status: a tunnel's protection state as data (a small enum, a stable
// reason code and a detail text, plus the SAs behind it), which unixctl
// renders as text in upstream's layout, the JSON view serialises and
// metrics count. Nothing here is prose meant to be parsed.

package backend

import (
	"fmt"
	"time"
)

// State is a tunnel's state as tunnels/show's Status line names it.
type State uint8

const (
	StateUnknown    State = iota // the backend did not answer
	StatePending                 // not yet given to the backend
	StateNotLoaded               // the backend holds nothing for it
	StateConnecting              // negotiation under way
	StateUp                      // IKE SA and every Child SA established
	StateDown                    // configured but not established
	StateBlocked                 // cannot be configured; its packets are dropped
	StateInvalid                 // the configuration is invalid
	StateUpdating                // the backend still runs another version
	StateError                   // configuring failed and nothing blocks its packets
	numStates
)

var stateNames = [numStates]string{"unknown", "pending", "not loaded", "connecting", "up", "down", "blocked", "invalid", "updating", "error"}

// States lists every State, for metrics that export one series per state.
func States() []State {
	s := make([]State, numStates)
	for i := range s {
		s[i] = State(i)
	}
	return s
}

func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalText renders the state as tunnels/show names it.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown tunnel state %q", b)
}

// Code is a stable, machine-readable reason: snake_case, for metric labels
// and the JSON view. Backends pass their engine's codes through (the
// native backend the IKE engine's); these are the ones every backend and
// the reconciler share.
type Code string

const (
	CodeNone               Code = ""
	CodeConfigInvalid      Code = "config_invalid"      // the tunnel's configuration is INVALID
	CodeConfigureFailed    Code = "configure_failed"    // the backend refused or failed to configure it
	CodeBackendUnreachable Code = "backend_unreachable" // the backend (IKE daemon) did not answer
	CodeBackendBroken      Code = "backend_broken"      // a part of the backend stopped
	CodePending            Code = "pending"             // not yet given to the backend
	CodeNotLoaded          Code = "not_loaded"          // the backend lost it; it is loaded again
	CodeOldVersion         Code = "old_version"         // the backend still runs a previous configuration
	CodeKernelRefused      Code = "kernel_refused"      // the kernel would not install the SA
	CodeInstallFailed      Code = "install_failed"      // the SA was negotiated but could not be installed
	CodeNegotiating        Code = "negotiating"         // negotiation under way
	CodeWaitingForChild    Code = "waiting_for_child"   // IKE SA up, a Child SA missing
	CodeUnknown            Code = "unknown"             // the backend gave no reason
)

// Summary is what tunnels/show's Status line says: the state and, when it
// is not up, why.
type Summary struct {
	State  State
	Code   Code
	Detail string
}

// String renders the summary as the Status line's value: "up", or
// "<state>: <detail>".
func (s Summary) String() string {
	if s.Detail == "" {
		return s.State.String()
	}
	return s.State.String() + ": " + s.Detail
}

// IKESAStatus is a tunnel's current IKE SA.
type IKESAStatus struct {
	State       string    `json:"state"` // "established", "connecting", ...
	Initiator   bool      `json:"initiator"`
	SPIi        string    `json:"spi_i,omitempty"`
	SPIr        string    `json:"spi_r,omitempty"`
	Algorithms  string    `json:"algorithms,omitempty"`
	Encap       bool      `json:"udp_encap"`
	NATLocal    bool      `json:"nat_local"`
	NATRemote   bool      `json:"nat_remote"`
	Established time.Time `json:"established,omitzero"`
	Rekeys      int       `json:"rekeys"`
}

// ChildSAStatus is one installed Child SA pair and its ESP counters.
type ChildSAStatus struct {
	Name        string            `json:"name"`
	InSPI       string            `json:"spi_in"`
	OutSPI      string            `json:"spi_out"`
	Algorithm   string            `json:"algorithm"`
	Encap       string            `json:"encap"`
	Established time.Time         `json:"established,omitzero"`
	PacketsIn   uint64            `json:"packets_in"`
	BytesIn     uint64            `json:"bytes_in"`
	PacketsOut  uint64            `json:"packets_out"`
	BytesOut    uint64            `json:"bytes_out"`
	Drops       map[string]uint64 `json:"drops,omitempty"` // by reason
}
