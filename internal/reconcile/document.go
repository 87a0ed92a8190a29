// Document: the machine-readable view of every tunnel, the same data
// tunnels/show renders as text, for `ovs-appctl tunnels/show
// --format=json`, the end-to-end tests, the benchmarks and (later) any
// tool that must not scrape text.

package reconcile

import (
	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// Document is every tracked tunnel and the backend's error, if any.
type Document struct {
	Tunnels      []TunnelDoc `json:"tunnels"`
	BackendError string      `json:"backend_error,omitempty"`
}

// TunnelDoc is one tunnel: its configuration as the database gives it, and
// its state as tunnels/show's Status line says it, with the SAs behind it.
type TunnelDoc struct {
	Name          string            `json:"name"`
	Version       int               `json:"version"`
	Config        tunnel.State      `json:"config"` // CONFIGURED or INVALID
	Type          tunnel.Type       `json:"type"`
	LocalIP       string            `json:"local_ip"`
	RemoteIP      string            `json:"remote_ip"`
	AddressFamily string            `json:"address_family"`
	DstPort       uint16            `json:"dst_port,omitempty"`
	Auth          tunnel.AuthMethod `json:"auth,omitempty"`
	LocalName     string            `json:"local_name,omitempty"`
	RemoteName    string            `json:"remote_name,omitempty"`
	Options       map[string]string `json:"options,omitempty"` // ipsec_* without the prefix
	Problems      []string          `json:"problems,omitempty"`

	State  backend.State `json:"state"`
	Code   backend.Code  `json:"code,omitempty"`
	Detail string        `json:"detail,omitempty"`

	IKE      *backend.IKESAStatus    `json:"ike,omitempty"`
	Children []backend.ChildSAStatus `json:"children,omitempty"`
	// Conns are the backend's connections (upstream names) and whether
	// each has an installed Child SA.
	Conns []ConnDoc `json:"conns,omitempty"`
}

// ConnDoc is one IKE connection ("<if>-in-<v>", ...).
type ConnDoc struct {
	Name   string `json:"name"`
	Active bool   `json:"active"`
}

// NewDocument builds the document from the views and the backend's error.
func NewDocument(views []TunnelView, backendErr error) Document {
	d := Document{Tunnels: make([]TunnelDoc, 0, len(views))}
	if backendErr != nil {
		d.BackendError = backendErr.Error()
	}
	for _, v := range views {
		t := v.Tunnel
		s := v.Summary(backendErr)
		td := TunnelDoc{
			Name: t.Name, Version: t.Version, Config: t.State, Type: t.Type,
			LocalIP: t.LocalIP, RemoteIP: t.RemoteIP, AddressFamily: t.AddressFamily, DstPort: t.DstPort,
			Auth: t.Auth, LocalName: t.LocalName, RemoteName: t.RemoteName, Problems: t.Problems,
			State: s.State, Code: s.Code, Detail: s.Detail,
			IKE: v.Status.IKE, Children: v.Status.Children,
		}
		if len(t.CustomOptions) > 0 {
			td.Options = make(map[string]string, len(t.CustomOptions))
			for _, o := range t.CustomOptions {
				td.Options[o.Key] = o.Value
			}
		}
		for _, c := range v.Status.Conns {
			td.Conns = append(td.Conns, ConnDoc{Name: c.Name, Active: c.Active})
		}
		d.Tunnels = append(d.Tunnels, td)
	}
	return d
}
