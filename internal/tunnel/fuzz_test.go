// Fuzz targets: Table.Update over arbitrary database strings, and the
// reading of dst_port as ovs-vswitchd does. (PEM parsing is fuzzed in
// internal/creds.)

package tunnel

import (
	"strconv"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
)

func FuzzUpdate(f *testing.F) {
	f.Add("geneve", "10.0.0.2", "10.0.0.1", "secret-psk", "", "", "encapsulation", "yes")
	f.Add("vxlan", "fd00::2", "", "", "hv2", "4790", "dpd-delay", "30s")
	f.Add("gre", "flow", "flow", "", "", "/pki/peer.pem", "", "")
	f.Fuzz(func(t *testing.T, typ, remoteIP, localIP, psk, remoteName, x, optKey, optVal string) {
		opts := map[string]string{"remote_ip": remoteIP, "local_ip": localIP, "psk": psk, "remote_name": remoteName,
			"dst_port": x, "remote_cert": x, "ipsec_" + optKey: optVal}
		s := Snapshot{Seq: 1, OtherConfig: map[string]string{"certificate": "/pki/cert.pem", "private_key": "/k", "ca_cert": x},
			Interfaces: []Interface{{Name: "t", Type: typ, Options: opts}}}
		tb := NewTable(newFake(), clocktest.New(testNow))
		ts, _ := tb.Update(s)
		if !selected(s.Interfaces[0]) {
			if len(ts) != 0 {
				t.Fatalf("unselected interface returned: %+v", ts)
			}
			return
		}
		if len(ts) != 1 || ts[0].Version != 1 {
			t.Fatalf("tunnels = %+v", ts)
		}
		tun := ts[0]
		switch tun.State {
		case StateConfigured:
			if tun.Reason != "" || family(tun.RemoteIP) == "" {
				t.Fatalf("CONFIGURED with reason %q remote %q", tun.Reason, tun.RemoteIP)
			}
		case StateInvalid:
			if !strings.HasPrefix(tun.Reason, ": ") {
				t.Fatalf("INVALID reason %q", tun.Reason)
			}
		default:
			t.Fatalf("state %s", tun.State)
		}
		out := Render(tun)
		if n := strings.Count(out, "\n"); n != 16 && !strings.ContainsAny(remoteIP+localIP+remoteName+x+typ+tun.Reason, "\n") {
			t.Fatalf("Render has %d lines:\n%s", n, out)
		}
		if len(psk) >= 12 && strings.Contains(out, psk) && !strings.Contains(remoteIP+localIP+remoteName+x+optKey+optVal+typ, psk) {
			t.Fatalf("Render shows the PSK:\n%s", out)
		}
		ts2, events := tb.Update(s)
		if len(ts2) != 1 || ts2[0].Version != 1 || len(events) != 0 {
			t.Fatalf("same snapshot again: %+v events %q", ts2, msgs(events))
		}
	})
}

// FuzzVswitchdPort checks vswitchdPort against strconv for the texts C's
// strtol reads a number from without saturating.
func FuzzVswitchdPort(f *testing.F) {
	for _, v := range dstPortValues {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := vswitchdPort(v) // must not panic on any input
		s := strings.TrimLeft(v, " \t\n\v\f\r")
		end := 0
		if end < len(s) && (s[end] == '+' || s[end] == '-') {
			end++
		}
		digits := end
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		if end == digits {
			if got != 0 {
				t.Fatalf("vswitchdPort(%q) = %d, want 0 (no digits)", v, got)
			}
			return
		}
		n, err := strconv.ParseInt(s[:end], 10, 64)
		if err != nil {
			return // saturates: covered by the table and the real ovs-vswitchd
		}
		if want := uint16(int32(n)); got != want {
			t.Fatalf("vswitchdPort(%q) = %d, want %d", v, got, want)
		}
	})
}
