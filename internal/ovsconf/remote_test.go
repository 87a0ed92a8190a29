// Tests for OVSDB remote validation.

package ovsconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRemote(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	long := "/" + strings.Repeat("x", maxUnixPath)
	tests := []struct {
		remote  string
		tls     bool
		want    string
		wantErr string
	}{
		{remote: "unix:/run/openvswitch/db.sock", want: "unix:/run/openvswitch/db.sock"},
		{remote: "unix:/run//openvswitch/./db.sock", want: "unix:/run/openvswitch/db.sock"},
		{remote: "unix:db.sock", want: "unix:" + filepath.Join(wd, "db.sock")},
		{remote: "unix:", wantErr: "want unix:PATH"},
		{remote: "unix:/tmp/a%20b", wantErr: "must not contain"},
		{remote: "unix:/tmp/a#b", wantErr: "must not contain"},
		{remote: "unix:/tmp/a?b", wantErr: "must not contain"},
		{remote: "unix:" + long, wantErr: "longer than"},
		{remote: "tcp:127.0.0.1:6640", want: "tcp:127.0.0.1:6640"},
		{remote: "tcp:[::1]:6640", want: "tcp:[::1]:6640"},
		{remote: "tcp:localhost:6640", want: "tcp:localhost:6640"},
		{remote: "tcp:127.0.0.1", wantErr: "want tcp:HOST:PORT"},
		{remote: "tcp:127.0.0.1:", wantErr: "want tcp:HOST:PORT"},
		{remote: "tcp:", wantErr: "want unix:PATH"},
		{remote: "ssl:10.0.0.1:6640", tls: true, want: "ssl:10.0.0.1:6640"},
		{remote: "ssl:10.0.0.1:6640", wantErr: "needs a TLS configuration"},
		{remote: "punix:/run/db.sock", wantErr: "passive"},
		{remote: "ptcp:6640", wantErr: "passive"},
		{remote: "udp:1.2.3.4:5", wantErr: "unsupported method"},
		{remote: "/run/openvswitch/db.sock", wantErr: "want unix:PATH"},
		{remote: "", wantErr: "want unix:PATH"},
	}
	for _, tc := range tests {
		t.Run(tc.remote, func(t *testing.T) {
			got, err := parseRemote(tc.remote, tc.tls)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseRemote(%q) = %q, %v; want error containing %q", tc.remote, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseRemote(%q) = %q, %v; want %q", tc.remote, got, err, tc.want)
			}
		})
	}
}
