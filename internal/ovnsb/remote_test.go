// Tests for Southbound remote parsing: lists, defaults, rejections, and a
// fuzz target (ovn-remote is read from the database).

package ovnsb

import (
	"slices"
	"strings"
	"testing"
)

func TestParseRemotes(t *testing.T) {
	long := "/" + strings.Repeat("x", maxUnixPath)
	tests := []struct {
		in      string
		want    []string
		wantErr string // substring of the error; "" for none
	}{
		{in: "", want: nil},
		{in: " , ", want: nil},
		{in: "tcp:192.0.2.10:6642", want: []string{"tcp:192.0.2.10:6642"}},
		{in: "tcp:192.0.2.10", want: []string{"tcp:192.0.2.10:6640"}},
		{in: "tcp:[2001:db8::1]:6642", want: []string{"tcp:[2001:db8::1]:6642"}},
		{in: "tcp:[2001:db8::1]", want: []string{"tcp:[2001:db8::1]:6640"}},
		{in: "tcp:sb.example:6642", want: []string{"tcp:sb.example:6642"}},
		{in: "tcp:192.0.2.1:6642,tcp:192.0.2.2:6642, tcp:192.0.2.3:6642",
			want: []string{"tcp:192.0.2.1:6642", "tcp:192.0.2.2:6642", "tcp:192.0.2.3:6642"}},
		{in: "cid:6d6b5a36-d6ea-4a25-b4c8-5b3eb3b9ad0f,tcp:192.0.2.1:6642", want: []string{"tcp:192.0.2.1:6642"}},
		{in: "unix:/run/ovn/ovnsb_db.sock", want: []string{"unix:/run/ovn/ovnsb_db.sock"}},
		{in: "unix:ovnsb_db.sock", want: []string{"unix:/rd/ovnsb_db.sock"}},
		{in: "ssl:192.0.2.10:6642", want: []string{"ssl:192.0.2.10:6642"}},
		{in: "tcp:192.0.2.1:6642,udp:192.0.2.2:1", want: []string{"tcp:192.0.2.1:6642"}, wantErr: "unsupported method"},
		{in: "ptcp:6642", wantErr: "passive"},
		{in: "tcp:192.0.2.1:0", wantErr: "bad port"},
		{in: "tcp:192.0.2.1:65536", wantErr: "bad port"},
		{in: "tcp:192.0.2.1:x", wantErr: "bad port"},
		{in: "tcp:2001:db8::1:6642", wantErr: "want tcp:HOST[:PORT]"},
		{in: "tcp::6642", wantErr: "bad host"},
		{in: "tcp:", wantErr: "want tcp:HOST:PORT"},
		{in: "unix:/a%20b", wantErr: "must not contain"},
		{in: "unix:" + long, wantErr: "longer than"},
		{in: "/run/ovn/ovnsb_db.sock", wantErr: "want tcp:HOST:PORT"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			eps, err := parseRemotes(tc.in, "/rd")
			var got []string
			for _, e := range eps {
				got = append(got, e.Dial)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("endpoints = %q, want %q", got, tc.want)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestCheckRemote(t *testing.T) {
	for in, want := range map[string]string{
		"tcp:192.0.2.10:6642":                     "",
		"unix:/run/ovn/ovnsb_db.sock":             "",
		"ssl:192.0.2.10:6642":                     "not supported",
		"tcp:192.0.2.10:6642,ssl:192.0.2.11:6642": "not supported",
		"":                     "names no remote",
		"tcp:192.0.2.10:99999": "bad port",
	} {
		err := CheckRemote(in, "/rd")
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckRemote(%q) = %v, want %q", in, err, want)
		}
	}
}

func FuzzParseRemotes(f *testing.F) {
	for _, s := range []string{
		"tcp:192.0.2.10:6642", "tcp:192.0.2.1:6642,tcp:192.0.2.2:6642", "ssl:[2001:db8::1]:6642",
		"unix:ovnsb_db.sock", "cid:x,unix:/run/ovn/ovnsb_db.sock", "tcp:[::1", "tcp:a:b:c", "unix:/%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		eps, _ := parseRemotes(in, "/var/run/openvswitch")
		for _, e := range eps {
			method, addr, _ := strings.Cut(e.Dial, ":")
			if method != e.Method {
				t.Fatalf("%q: endpoint %q has method %q", in, e.Dial, e.Method)
			}
			switch method {
			case "unix":
				if !strings.HasPrefix(addr, "/") || len(addr) > maxUnixPath {
					t.Fatalf("%q: %q is not a usable absolute socket path", in, e.Dial)
				}
			case "tcp", "ssl":
				if _, _, err := splitHostPort(addr); err != nil {
					t.Fatalf("%q: endpoint %q has no host and port: %v", in, e.Dial, err)
				}
			default:
				t.Fatalf("%q: unexpected method in %q", in, e.Dial)
			}
			again, err := parseRemotes(e.Dial, "/elsewhere")
			if err != nil || len(again) != 1 || again[0] != e {
				t.Fatalf("not idempotent: %q -> %q -> %v, %v", in, e.Dial, again, err)
			}
		}
	})
}
