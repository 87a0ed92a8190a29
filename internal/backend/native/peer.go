// Peer stage: turns one CONFIGURED tunnel into what the native engine
// needs: the IKE peer (authentication, identities, Child SAs with the
// tunnel's selectors, proposals, forced encapsulation) and the br-phy
// steering policy. Pure except for reading certificate and key files.

package native

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/creds"
	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// IP protocol numbers of the tunnel selectors.
const (
	protoUDP = 17
	protoGRE = 47
)

// CredLoader reads certificates and keys (creds.Source): a *creds.Store
// (the default), or a fake in tests. When it is also a creds.Watcher, the
// backend follows changed files (creds.go).
type CredLoader = creds.Source

// plan is everything Ensure installs for one tunnel.
type plan struct {
	peer     ike.Peer
	policy   ovsbridge.Policy
	local    netip.Addr
	remote   netip.Addr
	children []string // all child (conn) names
	// credPaths are the credential files the peer's Auth was read from.
	credPaths []string
	// unsupported lists custom options this backend ignored.
	unsupported []string
}

// peerName is the IKE peer name of a tunnel version ("<if>-<v>", like the
// strongswan backend's IKE connection).
func peerName(t tunnel.Tunnel) string { return t.Name + "-" + strconv.Itoa(t.Version) }

// planTunnel checks t and derives the IKE peer and the steering policy.
// local is the underlay address the engine is bound to.
func planTunnel(t tunnel.Tunnel, local netip.Addr, creds CredLoader) (*plan, error) {
	if t.State != tunnel.StateConfigured {
		return nil, fmt.Errorf("tunnel %s: state %s, only CONFIGURED tunnels can be protected", t.Name, t.State)
	}
	remote := t.Remote
	if !remote.Is4() {
		return nil, fmt.Errorf("tunnel %s: remote_ip %q: the native backend supports IPv4 underlays only", t.Name, t.RemoteIP)
	}
	switch t.LocalIP {
	case "", tunnel.DefaultRoute:
	default:
		if t.Local != local {
			return nil, fmt.Errorf("tunnel %s: local_ip %s is not the underlay address %s the native engine serves (br-phy's address); fix options:local_ip or ovnsecd's --local-ip", t.Name, t.LocalIP, local)
		}
	}
	p := &plan{local: local, remote: remote}
	if t.Type != tunnel.TypeGRE && t.DstPort == 0 {
		return nil, fmt.Errorf("tunnel %s: ovs-vswitchd sends it to UDP port 0 (options:dst_port does not read as a port number); set options:dst_port to a port number or remove it", t.Name)
	}
	p.policy = tunnelPolicy(t, remote)
	if err := p.policy.Validate(); err != nil {
		return nil, fmt.Errorf("tunnel %s: %w", t.Name, err)
	}
	// Only the lower address starts the IKE SA at once (and restarts it);
	// the other side initiates only if nothing came up within the peer
	// grace (Backend.initiateLate). Both starting at once makes duplicate
	// IKE SAs that the engine's collision handling may tear down on both
	// sides.
	peer := ike.Peer{Name: peerName(t), Local: local, Remote: remote, Initiate: local.Less(remote)}
	if err := setAuth(&peer, t, local, remote, creds); err != nil {
		return nil, err
	}
	o := t.Options()
	if len(o.Errors) > 0 {
		return nil, fmt.Errorf("tunnel %s: %s", t.Name, strings.Join(o.Errors, "; "))
	}
	if err := applyLifetimes(&peer, o); err != nil {
		return nil, fmt.Errorf("tunnel %s: %w", t.Name, err)
	}
	peer.ForceEncap = o.ForceEncap
	peer.IKEProposals, peer.ESPProposals = o.IKEProposals, o.ESPProposals
	for _, s := range o.Set {
		if !nativeOptions[s.Key] {
			p.unsupported = append(p.unsupported, strings.TrimPrefix(s.Spelling, "ipsec_"))
		}
	}
	for _, u := range o.Unknown {
		p.unsupported = append(p.unsupported, u.Key)
	}
	if peer.ForceEncap {
		p.policy.Encap = ovsbridge.EncapUDP4500
	}
	conns := t.Conns()
	p.children = conns
	host := func(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
	if t.Type == tunnel.TypeGRE {
		peer.Children = []ike.ChildConfig{{
			Name: conns[0], Mode: esp.Transport,
			LocalTS:  []ike.TrafficSelector{ike.PrefixTS(host(local), protoGRE)},
			RemoteTS: []ike.TrafficSelector{ike.PrefixTS(host(remote), protoGRE)},
		}}
	} else {
		port := p.policy.Port()
		onPort := func(ts ike.TrafficSelector) ike.TrafficSelector {
			ts.StartPort, ts.EndPort = port, port
			return ts
		}
		// As ovs-monitor-ipsec: "-in-" carries what the peer sends to our
		// tunnel port, "-out-" what we send to the peer's.
		peer.Children = []ike.ChildConfig{
			{Name: conns[0], Mode: esp.Transport,
				LocalTS:  []ike.TrafficSelector{onPort(ike.PrefixTS(host(local), protoUDP))},
				RemoteTS: []ike.TrafficSelector{ike.PrefixTS(host(remote), protoUDP)}},
			{Name: conns[1], Mode: esp.Transport,
				LocalTS:  []ike.TrafficSelector{ike.PrefixTS(host(local), protoUDP)},
				RemoteTS: []ike.TrafficSelector{onPort(ike.PrefixTS(host(remote), protoUDP))}},
		}
	}
	p.peer = peer
	p.credPaths = t.CredPaths()
	return p, nil
}

// nativeOptions are the custom options the native backend honours; the
// others are reported as ignored (backend.PartialError).
var nativeOptions = map[tunnel.OptionKey]bool{
	tunnel.OptForceEncap: true, tunnel.OptIKELifetime: true, tunnel.OptChildLifetime: true,
	tunnel.OptRekeyMargin: true, tunnel.OptRekeyFuzz: true, tunnel.OptIKE: true, tunnel.OptESP: true,
}

func setAuth(peer *ike.Peer, t tunnel.Tunnel, local, remote netip.Addr, creds CredLoader) error {
	switch t.Auth {
	case tunnel.AuthPSK:
		if !t.PSK.IsSet() {
			return fmt.Errorf("tunnel %s: PSK authentication without a PSK", t.Name)
		}
		peer.Auth.PSK = []byte(t.PSK.Reveal())
		// Without certificates the identities are the addresses (sent as
		// FQDN-type IDs: the native engine supports no other type).
		peer.LocalID, peer.RemoteID = local.String(), remote.String()
		return nil
	case tunnel.AuthSelfSigned, tunnel.AuthCASigned:
	default:
		return fmt.Errorf("tunnel %s: authentication method %q not supported by the native backend", t.Name, t.Auth)
	}
	if t.Certificate == "" || t.PrivateKey == "" {
		return fmt.Errorf("tunnel %s: certificate authentication needs other_config:certificate and private_key", t.Name)
	}
	chain, err := creds.Certificates(t.Certificate)
	if err != nil {
		return fmt.Errorf("tunnel %s: %w", t.Name, err)
	}
	key, err := creds.PrivateKey(t.PrivateKey)
	if err != nil {
		return fmt.Errorf("tunnel %s: %w", t.Name, err)
	}
	peer.Auth.Cert, peer.Auth.Key = chain, key
	peer.LocalID = t.LocalName
	if peer.LocalID == "" {
		peer.LocalID = chain[0].Subject.CommonName
	}
	peer.RemoteID = t.RemoteName
	if peer.LocalID == "" || peer.RemoteID == "" {
		return fmt.Errorf("tunnel %s: certificate authentication needs the local CN and the remote name (got %q and %q)", t.Name, peer.LocalID, peer.RemoteID)
	}
	if t.Auth == tunnel.AuthSelfSigned {
		if t.RemoteCert == "" {
			return fmt.Errorf("tunnel %s: self-signed authentication without options:remote_cert", t.Name)
		}
		rc, err := creds.Certificates(t.RemoteCert)
		if err != nil {
			return fmt.Errorf("tunnel %s: remote certificate: %w", t.Name, err)
		}
		peer.Auth.PeerCert = rc[0]
		return nil
	}
	if t.CACert == "" {
		return fmt.Errorf("tunnel %s: CA-signed authentication without other_config:ca_cert", t.Name)
	}
	cas, err := creds.Certificates(t.CACert)
	if err != nil {
		return fmt.Errorf("tunnel %s: CA certificate: %w", t.Name, err)
	}
	peer.Auth.CAs = cas
	return nil
}

// unsupportedError reports options the native backend ignored
// (backend.UnsupportedOptionsError), nil when there are none.
func unsupportedError(name string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	opts := make([]string, len(keys))
	for i, k := range keys {
		opts[i] = "ipsec_" + k
	}
	sort.Strings(opts)
	return &backend.UnsupportedOptionsError{Tunnel: name, Backend: "native", Options: opts}
}

var errClosed = errors.New("native backend is closed")
