package native

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

var (
	local  = netip.MustParseAddr("198.51.100.1")
	remote = netip.MustParseAddr("198.51.100.2")
)

// fakeIKE records what the backend asks of the engine.
type fakeIKE struct {
	mu         sync.Mutex
	handler    ike.ChildSAHandler
	peers      map[string]ike.Peer
	added      []string
	removed    []string
	status     map[string]ike.PeerStatus
	addErr     error
	fail       chan error // Run returns what is sent here
	initiated  []string
	rekeyed    []string
	updated    map[string]ike.Auth // UpdateCredentials calls
	saved      []ike.SavedSA       // what Suspend returns
	suspended  bool
	restored   []string // peers Restore was called for
	restoreErr error
}

func newFakeIKE() *fakeIKE {
	return &fakeIKE{peers: map[string]ike.Peer{}, status: map[string]ike.PeerStatus{}, fail: make(chan error, 1)}
}

func (f *fakeIKE) AddPeer(p ike.Peer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addErr != nil {
		return f.addErr
	}
	f.peers[p.Name] = p
	f.added = append(f.added, p.Name)
	return nil
}

func (f *fakeIKE) RemovePeer(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.peers, name)
	f.removed = append(f.removed, name)
}

func (f *fakeIKE) UpdateCredentials(name string, a ike.Auth) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.peers[name]; !ok {
		return fmt.Errorf("ike: update credentials: no peer %q", name)
	}
	if f.updated == nil {
		f.updated = map[string]ike.Auth{}
	}
	f.updated[name] = a
	return nil
}

// Suspend returns what the test put in f.saved.
func (f *fakeIKE) Suspend() []ike.SavedSA {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.suspended = true
	return f.saved
}

// Restore records the restore; f.restoreErr fails it.
func (f *fakeIKE) Restore(name string, s ike.SavedSA) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.restoreErr != nil {
		return f.restoreErr
	}
	if _, ok := f.peers[name]; !ok {
		return fmt.Errorf("ike: restore: no peer %q", name)
	}
	f.restored = append(f.restored, name)
	return nil
}

func (f *fakeIKE) Initiate(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.initiated = append(f.initiated, name)
	return nil
}

func (f *fakeIKE) RekeyChild(peer, child string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rekeyed = append(f.rekeyed, peer+"/"+child)
	return nil
}

func (f *fakeIKE) Status(name string) ike.PeerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.status[name]; ok {
		return s
	}
	return ike.PeerStatus{Name: name, State: ike.SADown, Reason: "not connected yet"}
}

func (f *fakeIKE) setStatus(s ike.PeerStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[s.Name] = s
}

func (f *fakeIKE) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-f.fail:
		return err
	}
}

// fakeAtt records the installed policies.
type fakeAtt struct {
	mu       sync.Mutex
	policies []ovsbridge.Policy
	sets     int
	detached bool
	err      error
	// failFrom, when > 0, makes every install from the failFrom-th on fail
	// (fault injection after the first installs went through).
	failFrom int
	calls    int
}

func (a *fakeAtt) SetPolicies(ctx context.Context, ps []ovsbridge.Policy) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.err != nil {
		return a.err
	}
	if a.failFrom > 0 && a.calls >= a.failFrom {
		return errors.New("ovs-ofctl: injected failure")
	}
	a.policies = append([]ovsbridge.Policy(nil), ps...)
	a.sets++
	return nil
}

func (a *fakeAtt) get() []ovsbridge.Policy {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]ovsbridge.Policy(nil), a.policies...)
}

func (a *fakeAtt) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (a *fakeAtt) Detach(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.detached = true
	return nil
}
func (a *fakeAtt) PlaintextDrops(ctx context.Context) (uint64, error) { return 0, nil }
func (a *fakeAtt) OverlayMTU(p ovsbridge.Policy) (int, error)         { return 1400, nil }

// chanDev is an engine port fed through a channel.
type chanDev struct {
	in      chan []byte
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	written [][]byte
}

func newChanDev() *chanDev { return &chanDev{in: make(chan []byte, 16), done: make(chan struct{})} }

func (d *chanDev) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	select {
	case f := <-d.in:
		sizes[0] = copy(bufs[0], f)
		return 1, nil
	case <-d.done:
		return 0, errors.New("closed")
	}
}

func (d *chanDev) WriteBatch(frames [][]byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range frames {
		d.written = append(d.written, append([]byte(nil), f...))
	}
	return len(frames), nil
}

func (d *chanDev) Close() error { d.once.Do(func() { close(d.done) }); return nil }

func (d *chanDev) writes() [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([][]byte(nil), d.written...)
}

type rig struct {
	b   *Backend
	eng *fakeIKE
	att *fakeAtt
	dev *chanDev
	clk *clocktest.Fake
}

func (r *rig) advance(d time.Duration) { r.clk.Advance(d) }

func newRig(t *testing.T) *rig { t.Helper(); return newRigWith(t, nil) }

// newRigWith is newRig with mod applied to the backend's Config.
func newRigWith(t *testing.T, mod func(*Config)) *rig {
	t.Helper()
	r := &rig{eng: newFakeIKE(), att: &fakeAtt{}, dev: newChanDev(), clk: clocktest.New(time.Unix(1700000000, 0))}
	cfg := Config{
		Local: local, Bridge: "br-phy", RekeyGrace: time.Minute, PeerGrace: 10 * time.Second,
		NewIKE: func(c ike.Config) (IKE, error) {
			r.eng.handler = c.Handler
			if c.Local != local {
				return nil, fmt.Errorf("engine local %v", c.Local)
			}
			return r.eng, nil
		},
		Creds: fakeCreds{},
		Log:   slog.New(slog.DiscardHandler),
		Clock: r.clk, Sweep: -1, // tests step the sweep by hand
	}
	if mod != nil {
		mod(&cfg)
	}
	b, err := newBackend(cfg, r.att, r.dev, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.b = b
	t.Cleanup(func() { b.Close(context.Background(), false) })
	return r
}

func geneveTunnel(version int) tunnel.Tunnel {
	return tunnel.Tunnel{
		Name: "ovn-b-0", Version: version, State: tunnel.StateConfigured, Type: tunnel.TypeGeneve,
		LocalIP: "198.51.100.1", RemoteIP: "198.51.100.2", Local: local, Remote: remote, AddressFamily: "IPv4", DstPort: 6081,
		Auth: tunnel.AuthPSK, PSK: tunnel.NewSecret("swordfish"),
	}
}

func keyBytes(seed byte) []byte {
	k := make([]byte, 36)
	for i := range k {
		k[i] = seed + byte(i*13)
	}
	return k
}

// child makes the ChildSA event payload for the tunnel's child name.
func child(t *testing.T, peer, name string, in, out esp.SPI, seed byte) ike.ChildSA {
	t.Helper()
	ik, err := esp.NewKey(keyBytes(seed))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := esp.NewKey(keyBytes(seed + 1))
	if err != nil {
		t.Fatal(err)
	}
	c := ike.ChildSA{Peer: peer, Name: name, Mode: esp.Transport, InSPI: in, OutSPI: out, InKey: ik, OutKey: ok,
		EncrKeyBits: 256, Established: time.Unix(1700000000, 0)}
	// Negotiated selectors as ovs-monitor-ipsec's conns have them.
	l := ike.PrefixTS(netip.PrefixFrom(local, 32), 17)
	r := ike.PrefixTS(netip.PrefixFrom(remote, 32), 17)
	if strings.Contains(name, "-in-") {
		l.StartPort, l.EndPort = 6081, 6081
	} else {
		r.StartPort, r.EndPort = 6081, 6081
	}
	c.LocalTS, c.RemoteTS = []ike.TrafficSelector{l}, []ike.TrafficSelector{r}
	return c
}

// fakeCreds serves generated certificates by path.
type fakeCreds struct{}

var (
	credOnce sync.Once
	credCert *x509.Certificate
	credKey  crypto.Signer
)

func testCert() (*x509.Certificate, crypto.Signer) {
	credOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hv1"}, DNSNames: []string{"hv1"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		if err != nil {
			panic(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		credCert, credKey = c, k
	})
	return credCert, credKey
}

func (fakeCreds) Certificates(path string) ([]*x509.Certificate, error) {
	if path == "/missing.pem" {
		return nil, errors.New("load certificate /missing.pem: no such file")
	}
	c, _ := testCert()
	return []*x509.Certificate{c}, nil
}

func (fakeCreds) PrivateKey(path string) (crypto.Signer, error) {
	if path == "/missing.pem" {
		return nil, errors.New("load private key /missing.pem: no such file")
	}
	_, k := testCert()
	return k, nil
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// setAddrs parses the tunnel's LocalIP and RemoteIP into Local and Remote,
// as the tunnel table does, after a test changed the strings.
func setAddrs(t *tunnel.Tunnel) {
	t.Local, t.Remote = tunnel.ParseAddr(t.LocalIP), tunnel.ParseAddr(t.RemoteIP)
}
