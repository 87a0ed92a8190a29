// Bridgeless: the backend without an OVS bridge (no --bridge), for a host
// that has only north-south connections. There is no engine port to read
// and no OpenFlow table to steer or drop OVS tunnel packets with, so an
// OVS tunnel that requires IPsec cannot be protected here: its guard
// fails, and the reconciler shows it blocked with the reason, never
// configured in clear.

package native

import (
	"context"
	"errors"
	"net"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
)

// errNoBridge is why an OVS tunnel cannot be protected without a bridge.
var errNoBridge = errors.New("the native backend runs without --bridge: it cannot steer or drop this host's OVS tunnel packets; give --bridge and --nic (north-south connections need neither)")

// bridgeless is the Attachment of a backend without a bridge: no policy
// can be installed.
type bridgeless struct{}

func (bridgeless) SetPolicies(_ context.Context, policies []ovsbridge.Policy) error {
	if len(policies) > 0 {
		return errNoBridge
	}
	return nil
}

func (bridgeless) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (bridgeless) Detach(context.Context) error                   { return nil }
func (bridgeless) PlaintextDrops(context.Context) (uint64, error) { return 0, nil }
func (bridgeless) OverlayMTU(ovsbridge.Policy) (int, error)       { return 0, errNoBridge }

// idleDevice is the engine port of a backend without a bridge: nothing to
// read, nothing written.
type idleDevice struct {
	done chan struct{}
	once chan struct{}
}

func newIdleDevice() *idleDevice {
	d := &idleDevice{done: make(chan struct{}), once: make(chan struct{}, 1)}
	d.once <- struct{}{}
	return d
}

func (d *idleDevice) ReadBatch([][]byte, []int) (int, error) {
	<-d.done
	return 0, net.ErrClosed
}

func (d *idleDevice) WriteBatch(frames [][]byte) (int, error) { return len(frames), nil }

func (d *idleDevice) Close() error {
	select {
	case <-d.once:
		close(d.done)
	default:
	}
	return nil
}
