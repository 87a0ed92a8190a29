// View: the read-only picture of every tracked tunnel that unixctl renders.

package reconcile

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// TunnelView is one tunnel with what the reconciler and the backend know.
type TunnelView struct {
	Tunnel    tunnel.Tunnel
	Status    backend.TunnelStatus
	HasStatus bool
	// Applied is the version last ensured successfully (0: none).
	Applied int
	// Current is true when the backend was given exactly this
	// configuration (a tunnel re-added under the same name and version
	// with another configuration is not current until ensured again).
	Current bool
	// LastErr is the last Ensure/Remove error, nil after a success.
	LastErr error
	// Warning is set when the tunnel was applied without part of its
	// configuration (backend.PartialError).
	Warning  error
	Failures int
	NextTry  time.Time
	// GuardErr says why the backend cannot drop the tunnel's packets
	// while it has no SAs (backend.Guard refused it, or installing the
	// drop rules failed); nil when they are dropped or no guard applies.
	GuardErr error
}

// View returns every tracked tunnel in name order and the last error from
// the backend as a whole (nil when it answered).
func (r *Reconciler) View() ([]TunnelView, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]TunnelView, 0, len(r.order))
	for _, name := range r.order {
		v := TunnelView{Tunnel: r.desired[name]}
		if h := r.health[name]; h != nil {
			v.Status, v.HasStatus = h.status, h.hasStatus
			v.Applied, v.LastErr, v.Failures, v.NextTry = h.applied, h.lastErr, h.failures, h.nextTry
			v.Warning = h.warning
			v.Current = h.isApplied(v.Tunnel)
			v.GuardErr = h.guardErr
		}
		if v.GuardErr == nil && r.guardErr != nil {
			v.GuardErr = r.guardErr
		}
		out = append(out, v)
	}
	return out, r.backErr
}

// LiveView is View with the backend's status read now rather than at the
// last pass, so that tunnels/show is current (a Child SA installed a moment
// ago shows as up at once).
func (r *Reconciler) LiveView(ctx context.Context) ([]TunnelView, error) {
	statuses, err := r.callStatus(ctx)
	views, berr := r.View()
	if err != nil {
		return views, err
	}
	for i := range views {
		st, ok := statuses[views[i].Tunnel.Name]
		views[i].Status, views[i].HasStatus = st, ok
	}
	return views, berr
}

// Summary is the state of a tunnel and, when it is not up, why: what
// tunnels/show's Status line renders (backend.Summary.String).
func (v TunnelView) Summary(backendErr error) backend.Summary {
	t := v.Tunnel
	switch {
	case t.State == tunnel.StateInvalid:
		detail := "configuration is invalid" + t.Reason
		if len(t.Problems) > 0 {
			detail += " (" + strings.Join(t.Problems, "; ") + ")"
		}
		if v.HasStatus && v.Status.Reason != "" {
			detail += "; " + v.Status.Reason
		}
		return backend.Summary{State: backend.StateInvalid, Code: backend.CodeConfigInvalid, Detail: detail + v.notBlocked()}
	case backendErr != nil && !v.HasStatus:
		return backend.Summary{State: backend.StateUnknown, Code: backend.CodeBackendUnreachable, Detail: backendErr.Error() + v.notBlocked()}
	case v.LastErr != nil && v.HasStatus && v.Status.Blocked:
		return backend.Summary{State: backend.StateBlocked, Code: backend.CodeConfigureFailed, Detail: v.LastErr.Error()}
	case v.LastErr != nil:
		return backend.Summary{State: backend.StateError, Code: backend.CodeConfigureFailed, Detail: v.LastErr.Error() + v.notBlocked()}
	case !v.HasStatus || v.Status.Phase == backend.PhaseNotLoaded:
		if v.Applied == 0 {
			return backend.Summary{State: backend.StatePending, Code: backend.CodePending, Detail: "not yet given to the IKE daemon"}
		}
		return backend.Summary{State: backend.StateNotLoaded, Code: backend.CodeNotLoaded, Detail: "the IKE daemon holds no connection for this tunnel; it will be loaded again"}
	case v.Status.Version != 0 && v.Status.Version != t.Version:
		return backend.Summary{State: backend.StateUpdating, Code: backend.CodeOldVersion, Detail: "the IKE daemon still runs version " + itoa(v.Status.Version)}
	case v.Status.Phase == backend.PhaseUp && !v.Current:
		return backend.Summary{State: backend.StateUpdating, Code: backend.CodeOldVersion, Detail: "the IKE daemon still runs the previous configuration of this tunnel"}
	case v.Status.Phase == backend.PhaseUp:
		return backend.Summary{State: backend.StateUp}
	default:
		s := backend.Summary{State: backend.StateDown, Code: v.Status.Code, Detail: v.Status.Reason}
		if v.Status.Phase == backend.PhaseConnecting {
			s.State = backend.StateConnecting
		}
		if s.Detail == "" {
			s.Detail = "no reason given by the backend"
		}
		if s.Code == backend.CodeNone {
			s.Code = backend.CodeUnknown
		}
		return s
	}
}

// notBlocked is the warning added to a reason when the tunnel's packets
// cannot be dropped while it is not protected.
func (v TunnelView) notBlocked() string {
	if v.GuardErr == nil {
		return ""
	}
	return "; its packets are NOT blocked: " + v.GuardErr.Error()
}

func itoa(n int) string { return strconv.Itoa(n) }
