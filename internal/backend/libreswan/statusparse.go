// Status parsing: reads `ipsec status` (pluto's whack --status) into the
// connections pluto holds (loaded), the SAs it has (IKE and Child, by
// state) and the connections with an installed Child SA (active: a state
// line with an ESP SPI, as ovs-monitor-ipsec 6e6c5126b counts them).
// Libreswan 4 prefixes every line with "000 "; 5 does not. Addresses may
// be IPv4 or IPv6 (upstream's digits-only regex dropped live IPv6 conns,
// f1f214e5c).

package libreswan

import (
	"strconv"
	"strings"
)

// plutoStatus is one `ipsec status` output, parsed.
type plutoStatus struct {
	// Loaded are the connections pluto holds, by name.
	Loaded map[string]bool
	// States are the IKE and Child SAs, in output order.
	States []plutoState
	// Peers maps a loaded connection to its remote address, as printed.
	Peers map[string]string
	// Active maps a connection with an installed Child SA to its ESP
	// line (what upstream's ipsec/status and tunnels/show print).
	Active map[string]string
}

// plutoState is one "#N: "conn"..." state line.
type plutoState struct {
	Serial int
	Conn   string
	// Name is the state name ("STATE_V2_ESTABLISHED_IKE_SA", ...); empty
	// on a traffic line.
	Name string
	Line string // the line without the "000 " prefix
	ESP  bool   // the line names an ESP SPI (esp.<hex>@ or esp:<hex>@)
}

// IKEEstablished reports whether the state is an established IKE SA.
func (s plutoState) IKEEstablished() bool {
	return strings.Contains(s.Name, "ESTABLISHED_IKE_SA") || strings.Contains(s.Name, "PARENT_I3") || strings.Contains(s.Name, "PARENT_R2")
}

// ChildEstablished reports whether the state is an established Child SA.
func (s plutoState) ChildEstablished() bool {
	return strings.Contains(s.Name, "ESTABLISHED_CHILD_SA") || strings.Contains(s.Name, "V2_IPSEC_I") || strings.Contains(s.Name, "V2_IPSEC_R")
}

// parseStatus parses `ipsec status` output. It never fails: lines it does
// not understand are skipped.
func parseStatus(out string) plutoStatus {
	st := plutoStatus{Loaded: map[string]bool{}, Peers: map[string]string{}, Active: map[string]string{}}
	for _, raw := range strings.Split(out, "\n") {
		line := strings.TrimRight(raw, "\r")
		line = stripCode(line)
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "#"):
			if s, ok := parseStateLine(trimmed); ok {
				st.States = append(st.States, s)
				if s.ESP {
					if _, dup := st.Active[s.Conn]; !dup {
						st.Active[s.Conn] = s.Line
					}
				}
			}
		case strings.HasPrefix(line, `"`):
			if name, ok := loadedConn(line); ok {
				st.Loaded[name] = true
				if p := peerOf(line); p != "" {
					st.Peers[name] = p
				}
			}
		}
	}
	return st
}

// stripCode removes libreswan 4's three-digit whack code and its space.
func stripCode(line string) string {
	if len(line) >= 4 && line[3] == ' ' && isDigit(line[0]) && isDigit(line[1]) && isDigit(line[2]) {
		return line[4:]
	}
	return line
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// quoted returns the text between the first pair of double quotes at the
// start of s and what follows the closing quote.
func quoted(s string) (name, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	name = s[1 : 1+end]
	if name == "" {
		return "", "", false
	}
	return name, s[2+end:], true
}

// loadedConn reads a connection's first status line,
// `"name": 192.0.2.1/32:UDP/6081===192.0.2.1...192.0.2.2===...` (IPv6:
// `"name": 2001:db8::1...`): after `": ` an address (hex digit or '[')
// and "..." or "===" further on. The other lines of the connection start
// `"name":` followed by spaces.
func loadedConn(line string) (string, bool) {
	name, rest, ok := quoted(line)
	if !ok {
		return "", false
	}
	rest, ok = strings.CutPrefix(rest, ": ")
	if !ok || rest == "" {
		return "", false
	}
	c := rest[0]
	if !(isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '[') {
		return "", false
	}
	if !strings.Contains(rest, "...") && !strings.Contains(rest, "===") {
		return "", false
	}
	return name, true
}

// peerOf is the remote address of a connection's first status line: what
// follows "...", up to the first character that is not part of an IPv4 or
// IPv6 address.
func peerOf(line string) string {
	_, rest, ok := strings.Cut(line, "...")
	if !ok {
		return ""
	}
	end := 0
	for end < len(rest) {
		c := rest[end]
		if !(isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':') {
			break
		}
		end++
	}
	return strings.TrimRight(rest[:end], ":")
}

// parseStateLine reads `#N: "name"...`.
func parseStateLine(line string) (plutoState, bool) {
	num, rest, ok := strings.Cut(line[1:], ": ")
	if !ok {
		return plutoState{}, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return plutoState{}, false
	}
	name, after, ok := quoted(rest)
	if !ok {
		return plutoState{}, false
	}
	s := plutoState{Serial: n, Conn: name, Line: line, ESP: hasESPSPI(after)}
	for _, f := range strings.Fields(after) {
		if strings.HasPrefix(f, "STATE_") || strings.HasPrefix(f, "ESTABLISHED_") || strings.HasPrefix(f, "PARENT_") {
			s.Name = f
			break
		}
	}
	return s, true
}

// hasESPSPI reports whether s contains "esp.<hex>@" or "esp:<hex>@".
func hasESPSPI(s string) bool {
	for {
		i := strings.Index(s, "esp")
		if i < 0 {
			return false
		}
		s = s[i+3:]
		if s == "" || (s[0] != '.' && s[0] != ':') {
			continue
		}
		j := 1
		for j < len(s) && (isDigit(s[j]) || s[j] >= 'a' && s[j] <= 'f') {
			j++
		}
		if j > 1 && j < len(s) && s[j] == '@' {
			return true
		}
	}
}
