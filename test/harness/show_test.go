package harness

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/reconcile"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// showSample is a reply of tunnels/show --format=json as ovnsecd prints it
// (json.MarshalIndent of a reconcile.Document).
const showSample = `{
  "tunnels": [
    {
      "name": "tun",
      "version": 2,
      "config": "CONFIGURED",
      "type": "geneve",
      "local_ip": "198.51.100.1",
      "remote_ip": "198.51.100.2",
      "address_family": "IPv4",
      "dst_port": 6081,
      "auth": "psk",
      "state": "up",
      "ike": {
        "state": "established",
        "initiator": true,
        "spi_i": "1d7db60a0749b6a9",
        "spi_r": "e9ab848de3bc54eb",
        "algorithms": "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE_25519",
        "udp_encap": true,
        "nat_local": false,
        "nat_remote": true,
        "rekeys": 0
      },
      "children": [
        {"name": "tun-in-2", "spi_in": "a2dc5ea6", "spi_out": "3c5922d0", "algorithm": "AES_GCM_16_256",
         "encap": "udp 4500->44500", "packets_in": 3, "bytes_in": 300, "packets_out": 4, "bytes_out": 400,
         "drops": {"replay": 3, "auth": 1}},
        {"name": "tun-out-2", "spi_in": "0a1cd698", "spi_out": "7dc56470", "algorithm": "AES_GCM_16_256",
         "encap": "udp 4500->44500", "packets_in": 0, "bytes_in": 0, "packets_out": 0, "bytes_out": 0}
      ],
      "conns": [{"name": "tun-in-2", "active": true}, {"name": "tun-out-2", "active": true}]
    },
    {
      "name": "gone",
      "version": 1,
      "config": "INVALID",
      "type": "gre",
      "local_ip": "",
      "remote_ip": "198.51.100.3",
      "address_family": "IPv4",
      "state": "not loaded",
      "code": "not_loaded",
      "detail": "the IKE daemon holds no connection for this tunnel; it will be loaded again"
    }
  ]
}
`

func TestShowJSON(t *testing.T) {
	s, err := ShowJSON(showSample)
	if err != nil {
		t.Fatal(err)
	}
	tun, ok := s.Tunnel("tun")
	if !ok {
		t.Fatalf("tun not found in %+v", s)
	}
	if tun.Version != 2 || tun.Config != tunnel.StateConfigured || tun.State != backend.StateUp || tun.Auth != tunnel.AuthPSK || tun.DstPort != 6081 {
		t.Errorf("tun = %+v", tun)
	}
	if tun.IKE == nil || tun.IKE.State != "established" || !tun.IKE.Encap || tun.IKE.NATLocal || !tun.IKE.NATRemote {
		t.Errorf("tun's IKE SA = %+v", tun.IKE)
	}
	if len(tun.Children) != 2 || tun.Children[0].Drops["replay"] != 3 || tun.Children[0].Drops["auth"] != 1 || tun.Children[1].Encap != "udp 4500->44500" {
		t.Errorf("tun's Child SAs = %+v", tun.Children)
	}
	if n := ActiveConns(tun); n != 2 {
		t.Errorf("ActiveConns = %d, want 2", n)
	}
	if got := Status(tun); got != "up" {
		t.Errorf("Status(tun) = %q, want up", got)
	}
	gone, ok := s.Tunnel("gone")
	if !ok || gone.State != backend.StateNotLoaded || gone.Config != tunnel.StateInvalid {
		t.Errorf("gone = %+v, %v", gone, ok)
	}
	if got, want := Status(gone), "not loaded: the IKE daemon holds no connection for this tunnel; it will be loaded again [not_loaded]"; got != want {
		t.Errorf("Status(gone) = %q, want %q", got, want)
	}
	if _, ok := s.Tunnel("other"); ok {
		t.Error("Tunnel(other) found a tunnel that is not listed")
	}

	empty, err := ShowJSON("{\n  \"tunnels\": []\n}\n")
	if err != nil || len(empty.Tunnels) != 0 {
		t.Errorf("no tunnels: %+v, %v", empty, err)
	}
}

// The document ovnsecd marshals parses back to itself.
func TestShowJSONRoundTrip(t *testing.T) {
	doc := reconcile.Document{BackendError: "charon is not reachable", Tunnels: []reconcile.TunnelDoc{{
		Name: "gnv0", Version: 3, Config: tunnel.StateConfigured, Type: tunnel.TypeGeneve, RemoteIP: "192.0.2.2",
		State: backend.StateBlocked, Code: backend.CodeConfigureFailed, Detail: "local_ip 192.0.2.9 is not br-phy's address",
		Options: map[string]string{"salifetime": "20s"}, Problems: []string{"certificate expires soon"},
		IKE:      &backend.IKESAStatus{State: "connecting", Established: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		Children: []backend.ChildSAStatus{{Name: "gnv0-out-3", Drops: map[string]uint64{"policy": 7}}},
		Conns:    []reconcile.ConnDoc{{Name: "gnv0-out-3"}},
	}}}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ShowJSON(string(b) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Document, doc) {
		t.Errorf("round trip:\n got %+v\nwant %+v", s.Document, doc)
	}
}

func TestShowJSONRefuses(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"the text view", "Interface name: tun v1 (CONFIGURED)\n  Status:         up\n", "not the JSON view"},
		{"no tunnels at all, as text", "No tunnels configured with IPsec\n", "not the JSON view"},
		{"empty", "", "not the JSON view"},
		{"cut short", `{"tunnels": [{"name": "tun"`, "tunnels/show --format=json"},
		{"unknown state", `{"tunnels": [{"name": "tun", "state": "sleeping"}]}`, "unknown tunnel state"},
		{"no tunnels list", `{"backend_error": "x"}`, `no "tunnels" list`},
		{"two documents", `{"tunnels": []} {"tunnels": []}`, "data after the document"},
		{"listed twice", `{"tunnels": [{"name": "tun"}, {"name": "tun"}]}`, "listed twice"},
		{"no name", `{"tunnels": [{"state": "up"}]}`, "empty or listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ShowJSON(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ShowJSON = %+v, %v; want an error with %q", s, err, tc.want)
			}
		})
	}
}

// FuzzShowJSON: any reply is parsed or refused, never a panic, and what is
// accepted marshals and parses back to the same document.
func FuzzShowJSON(f *testing.F) {
	f.Add(showSample)
	f.Add(`{"tunnels": []}`)
	f.Add(`{"tunnels": [{"name": "tun", "state": "sleeping"}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ShowJSON(in)
		if err != nil {
			return
		}
		b, err := json.Marshal(s.Document)
		if err != nil {
			t.Fatalf("accepted document does not marshal: %v", err)
		}
		again, err := ShowJSON(string(b))
		if err != nil {
			t.Fatalf("accepted document does not parse back: %v\n%s", err, b)
		}
		b2, _ := json.Marshal(again.Document)
		if string(b) != string(b2) {
			t.Fatalf("not stable:\n%s\n%s", b, b2)
		}
	})
}
