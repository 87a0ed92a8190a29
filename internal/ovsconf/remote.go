// Remote parsing: checks an OVSDB remote string (ovsdb(7) "active"
// connection methods) and turns it into an endpoint that libovsdb dials
// exactly as written.

package ovsconf

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
)

// maxUnixPath is the usable length of sockaddr_un.sun_path on Linux.
const maxUnixPath = 107

// parseRemote validates remote ("unix:PATH", "tcp:HOST:PORT" or
// "ssl:HOST:PORT") and returns the endpoint string to hand to libovsdb.
//
// It exists because libovsdb silently replaces a remote it cannot split
// with its built-in default: "unix:db.sock" (a relative path parses as an
// opaque URL with an empty Path) becomes unix:/var/run/openvswitch/db.sock,
// and "tcp:" becomes tcp:127.0.0.1:6640. libovsdb also URL-decodes the
// path, so '%', '?' and '#' would change which socket is dialled.
func parseRemote(remote string, haveTLS bool) (string, error) {
	method, addr, ok := strings.Cut(remote, ":")
	if !ok || addr == "" {
		return "", fmt.Errorf("ovsdb remote %q: want unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT", remote)
	}
	switch method {
	case "unix":
		if strings.ContainsAny(addr, "%?#") {
			return "", fmt.Errorf("ovsdb remote %q: socket path must not contain '%%', '?' or '#'", remote)
		}
		p, err := filepath.Abs(addr)
		if err != nil {
			return "", fmt.Errorf("ovsdb remote %q: make socket path absolute: %w", remote, err)
		}
		if len(p) > maxUnixPath {
			return "", fmt.Errorf("ovsdb remote %q: socket path %s is longer than %d bytes; use a shorter path", remote, p, maxUnixPath)
		}
		return asLibovsdbSees("unix:"+p, method, p)
	case "tcp", "ssl":
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port == "" {
			return "", fmt.Errorf("ovsdb remote %q: want %s:HOST:PORT (IPv6 as [ADDR]:PORT)", remote, method)
		}
		if method == "ssl" && !haveTLS {
			return "", fmt.Errorf("ovsdb remote %q: ssl needs a TLS configuration (ovsconf.WithTLSConfig)", remote)
		}
		hp := net.JoinHostPort(host, port)
		return asLibovsdbSees(method+":"+hp, method, hp)
	case "punix", "ptcp", "pssl":
		return "", fmt.Errorf("ovsdb remote %q: %s is a listening (passive) remote; use %s", remote, method, method[1:])
	default:
		return "", fmt.Errorf("ovsdb remote %q: unsupported method %q; want unix, tcp or ssl", remote, method)
	}
}

// asLibovsdbSees returns endpoint if libovsdb, which splits endpoints with
// url.Parse and dials the URL's Path (unix) or Opaque part (tcp, ssl), will
// dial exactly addr; otherwise it returns an error.
func asLibovsdbSees(endpoint, method, addr string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("ovsdb remote %s: address not usable with libovsdb: %w", endpoint, err)
	}
	got := u.Opaque
	if method == "unix" {
		got = u.Path
	}
	if u.Scheme != method || got != addr || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("ovsdb remote %s: libovsdb would dial %s:%s instead; avoid special characters in the address", endpoint, u.Scheme, got)
	}
	return endpoint, nil
}
