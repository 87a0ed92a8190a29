// Remote parsing: the OVN Southbound connection string as ovn-controller
// reads it from Open_vSwitch external_ids:ovn-remote (or ovnsecd's
// --ovn-sb): one or more active OVSDB remotes, each checked and turned into
// an endpoint libovsdb dials exactly as written.

package ovnsb

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// defaultPort is the port OVS dials for a tcp: or ssl: remote without one
// (OVSDB_PORT); ovn-controller uses it for ovn-remote too.
const defaultPort = "6640"

// maxUnixPath is the usable length of sockaddr_un.sun_path on Linux.
const maxUnixPath = 107

// Endpoint is one Southbound remote.
type Endpoint struct {
	// Method is "tcp", "ssl" or "unix".
	Method string
	// Dial is the remote as libovsdb dials it: "tcp:HOST:PORT",
	// "ssl:HOST:PORT" or "unix:/ABSOLUTE/PATH".
	Dial string
}

func (e Endpoint) String() string { return e.Dial }

// parseRemotes splits an ovn-remote value the way OVS does (remotes
// separated by commas or white space; a "cid:UUID" cluster id entry is
// skipped) and checks every remote. A relative unix: path is taken
// relative to rundir, as OVS takes it relative to its run directory.
//
// It returns the usable endpoints in their order, and an error naming each
// remote that cannot be used; a list with one bad remote still yields the
// others. An empty list yields no endpoints and no error.
func parseRemotes(s, rundir string) ([]Endpoint, error) {
	var eps []Endpoint
	var errs []error
	for _, r := range strings.FieldsFunc(s, func(c rune) bool { return strings.ContainsRune(", \t\r\n", c) }) {
		if strings.HasPrefix(r, "cid:") {
			continue // cluster id: libovsdb cannot check it; the remotes still work
		}
		ep, err := parseRemote(r, rundir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		eps = append(eps, ep)
	}
	return eps, errors.Join(errs...)
}

// parseRemote checks one active remote: unix:PATH, tcp:HOST[:PORT] or
// ssl:HOST[:PORT] (IPv6 hosts in brackets).
func parseRemote(r, rundir string) (Endpoint, error) {
	method, addr, ok := strings.Cut(r, ":")
	if !ok || addr == "" {
		return Endpoint{}, fmt.Errorf("southbound remote %q: want tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH", r)
	}
	switch method {
	case "unix":
		if strings.ContainsAny(addr, "%?#") {
			return Endpoint{}, fmt.Errorf("southbound remote %q: socket path must not contain '%%', '?' or '#'", r)
		}
		p := addr
		if !filepath.IsAbs(p) {
			p = filepath.Join(rundir, p)
		}
		p = filepath.Clean(p)
		if !filepath.IsAbs(p) {
			return Endpoint{}, fmt.Errorf("southbound remote %q: relative socket path and no absolute run directory (%q) to resolve it in; give an absolute path", r, rundir)
		}
		if len(p) > maxUnixPath {
			return Endpoint{}, fmt.Errorf("southbound remote %q: socket path %s is longer than %d bytes; use a shorter path", r, p, maxUnixPath)
		}
		return checkURL(Endpoint{Method: method, Dial: "unix:" + p}, p)
	case "tcp", "ssl":
		host, port, err := splitHostPort(addr)
		if err != nil {
			return Endpoint{}, fmt.Errorf("southbound remote %q: want %s:HOST[:PORT] (IPv6 as [ADDR]:PORT): %w", r, method, err)
		}
		hp := net.JoinHostPort(host, port)
		return checkURL(Endpoint{Method: method, Dial: method + ":" + hp}, hp)
	case "punix", "ptcp", "pssl":
		return Endpoint{}, fmt.Errorf("southbound remote %q: %s is a listening (passive) remote; ovn-remote needs %s", r, method, method[1:])
	default:
		return Endpoint{}, fmt.Errorf("southbound remote %q: unsupported method %q; want tcp, ssl or unix", r, method)
	}
}

// splitHostPort splits HOST[:PORT]; the port defaults to 6640 as in OVS.
func splitHostPort(addr string) (host, port string, err error) {
	switch {
	case strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]"):
		host, port = addr[1:len(addr)-1], defaultPort
	case strings.Count(addr, ":") == 0:
		host, port = addr, defaultPort
	default:
		host, port, err = net.SplitHostPort(addr)
		if err != nil {
			return "", "", err
		}
	}
	if host == "" || strings.ContainsAny(host, "[]/ ") {
		return "", "", fmt.Errorf("bad host %q", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strings.Trim(port, "0123456789") != "" {
		return "", "", fmt.Errorf("bad port %q", port)
	}
	return host, port, nil
}

// checkURL returns e if libovsdb, which splits endpoints with url.Parse and
// dials the URL's Path (unix) or Opaque part (tcp, ssl), will dial exactly
// addr; libovsdb silently dials its default socket for what it cannot split.
func checkURL(e Endpoint, addr string) (Endpoint, error) {
	u, err := url.Parse(e.Dial)
	if err != nil {
		return Endpoint{}, fmt.Errorf("southbound remote %s: address not usable with libovsdb: %w", e.Dial, err)
	}
	got := u.Opaque
	if e.Method == "unix" {
		got = u.Path
	}
	if u.Scheme != e.Method || got != addr || u.RawQuery != "" || u.Fragment != "" {
		return Endpoint{}, fmt.Errorf("southbound remote %s: libovsdb would dial %s:%s instead; avoid special characters in the address", e.Dial, u.Scheme, got)
	}
	return e, nil
}

// CheckRemote reports whether remote (an ovn-remote value, as given to
// --ovn-sb) names at least one remote the Follower can use and nothing it
// cannot. A relative unix: path is taken relative to rundir.
func CheckRemote(remote, rundir string) error {
	eps, err := parseRemotes(remote, rundir)
	if err != nil {
		return err
	}
	if len(eps) == 0 {
		return fmt.Errorf("southbound remote %q names no remote", remote)
	}
	for _, ep := range eps {
		if ep.Method == "ssl" {
			return fmt.Errorf("southbound remote %s: ssl: is not supported by ovnsecd yet; give a tcp: or unix: remote", ep.Dial)
		}
	}
	return nil
}
