// DC gateway: a strongSwan charon with kernel-libipsec (userspace ESP over
// a TUN device, tunnel mode; this kernel has no ESP) standing for the
// remote end of a north-south connection, with a subnet behind it.

package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dcPlugins: kernel-libipsec before kernel-netlink (the first kernel-ipsec
// registered wins), as bench/lib/strongswan.sh.
const dcPlugins = "random nonce aesni openssl aes gcm sha1 sha2 hmac kdf pem pkcs1 pkcs8 x509 pubkey constraints revocation socket-default kernel-libipsec kernel-netlink vici updown"

// DCConn is one connection of a DC gateway, in swanctl terms.
type DCConn struct {
	Name              string
	Local, Remote     string // underlay addresses (remote may be %any)
	LocalID, RemoteID string
	LocalTS, RemoteTS string // comma-separated subnets
	PSK               string // PSK authentication when set
	// Cert and Key (PEM files) and CA: certificate authentication.
	Cert, Key, CA string
	Encap         bool // encap = yes
	StartAction   string
}

// DCGateway is a charon with libipsec in a namespace.
type DCGateway struct {
	*Charon
}

// NewDCGateway starts a charon with kernel-libipsec in h and loads conns.
func NewDCGateway(t testing.TB, h *Host, conns ...DCConn) *DCGateway {
	t.Helper()
	c := NewCharon(t, h, CharonOptions{LibIPsec: true, Config: func(socket, logFile string) string {
		return fmt.Sprintf(`charon {
	load_modular = no
	load = %s
	port = 500
	port_nat_t = 4500
	retransmit_tries = 3
	retransmit_timeout = 1.0
	plugins {
		vici {
			socket = %s
		}
	}
	filelog {
		test {
			path = %s
			time_format = %%T
			default = 1
			ike = 2
			flush_line = yes
		}
	}
}
`, dcPlugins, socket, logFile)
	}})
	g := &DCGateway{Charon: c}
	g.Load(t, conns...)
	return g
}

// Load writes swanctl.conf with conns (and their credentials) and loads it.
func (g *DCGateway) Load(t testing.TB, conns ...DCConn) {
	t.Helper()
	var b strings.Builder
	b.WriteString("connections {\n")
	var secrets strings.Builder
	for _, c := range conns {
		start := c.StartAction
		if start == "" {
			start = "none"
		}
		encap := "no"
		if c.Encap {
			encap = "yes"
		}
		auth := "psk"
		var lcerts, rcas string
		if c.PSK == "" {
			auth = "pubkey"
			lcerts = "\t\t\tcerts = " + filepath.Base(c.Cert) + "\n"
			rcas = "\t\t\tcacerts = " + filepath.Base(c.CA) + "\n"
			copyTo(t, c.Cert, filepath.Join(g.Dir, "x509", filepath.Base(c.Cert)))
			copyTo(t, c.CA, filepath.Join(g.Dir, "x509ca", filepath.Base(c.CA)))
			copyTo(t, c.Key, filepath.Join(g.Dir, "private", filepath.Base(c.Key)))
		} else {
			fmt.Fprintf(&secrets, "\tike-%s {\n\t\tid-1 = %s\n\t\tid-2 = %s\n\t\tsecret = %q\n\t}\n", c.Name, c.LocalID, c.RemoteID, c.PSK)
		}
		fmt.Fprintf(&b, `	%s {
		version = 2
		local_addrs = %s
		remote_addrs = %s
		encap = %s
		proposals = aes256gcm16-prfsha256-x25519, aes256gcm16-prfsha256-ecp256, aes256gcm16-prfsha256-modp2048
		local {
			auth = %s
			id = %s
%s		}
		remote {
			auth = %s
			id = %s
%s		}
		children {
			%s {
				mode = tunnel
				local_ts = %s
				remote_ts = %s
				esp_proposals = aes256gcm16, aes256gcm16-x25519, aes256gcm16-ecp256, aes256gcm16-modp2048
				start_action = %s
			}
		}
	}
`, c.Name, c.Local, c.Remote, encap, auth, c.LocalID, lcerts, auth, c.RemoteID, rcas, c.Name, c.LocalTS, c.RemoteTS, start)
	}
	b.WriteString("}\nsecrets {\n" + secrets.String() + "}\n")
	if err := os.WriteFile(filepath.Join(g.Dir, "swanctl.conf"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := g.Swanctl("--load-all", "--file", filepath.Join(g.Dir, "swanctl.conf")); err != nil {
		t.Fatalf("swanctl --load-all in %s: %v\n%s\n%s", g.host.Name, err, out, b.String())
	}
}

// WaitSA waits until swanctl --list-sas shows an installed tunnel-mode
// Child SA of conn and returns the listing.
func (g *DCGateway) WaitSA(t testing.TB, conn string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, _ := g.Swanctl("--list-sas", "--ike", conn)
		if strings.Contains(out, "INSTALLED, TUNNEL") {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("no installed Child SA of %s at the DC gateway within %v:\n%s", conn, timeout, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func copyTo(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
