package main

import (
	"bytes"
	"errors"
	"flag"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/backend/libreswan"
	"github.com/ovnsec/ovnsec/internal/backend/native"
	"github.com/ovnsec/ovnsec/internal/backend/strongswan"
)

func TestParseArgs(t *testing.T) {
	t.Setenv("OVS_RUNDIR", "/run/x")
	tests := []struct {
		name    string
		args    []string
		want    config // database, pidfile, ikeDaemon, bridge, viciSocket, noRestart compared
		wantErr string
	}{
		{name: "nothing", want: config{database: "unix:/run/x/db.sock"}},
		{name: "database", args: []string{"unix:/tmp/db.sock"}, want: config{database: "unix:/tmp/db.sock"}},
		{name: "bare pidfile takes no value", args: []string{"--pidfile", "tcp:127.0.0.1:6640"},
			want: config{database: "tcp:127.0.0.1:6640", pidfile: "/run/x/ovnsecd.pid"}},
		{name: "pidfile value", args: []string{"--pidfile=my.pid"}, want: config{database: "unix:/run/x/db.sock", pidfile: "/run/x/my.pid"}},
		// As ovs-monitor-ipsec's argparse: options after the database.
		{name: "options after the database", args: []string{"unix:/var/run/openvswitch/db.sock", "--ike-daemon=native", "--bridge=br-phy"},
			want: config{database: "unix:/var/run/openvswitch/db.sock", ikeDaemon: "native", bridge: "br-phy"}},
		{name: "options on both sides, values as separate arguments",
			args: []string{"--ike-daemon", "strongswan", "unix:/tmp/db.sock", "--vici-socket", "unix:///tmp/c.vici", "--pidfile"},
			want: config{database: "unix:/tmp/db.sock", ikeDaemon: "strongswan", viciSocket: "unix:///tmp/c.vici", pidfile: "/run/x/ovnsecd.pid"}},
		{name: "a value that looks like a positional is the value", args: []string{"--bridge", "unix:/not-a-db.sock"},
			want: config{database: "unix:/run/x/db.sock", bridge: "unix:/not-a-db.sock"}},
		{name: "a bool flag takes no value", args: []string{"--no-restart-ike-daemon", "unix:/a.sock"},
			want: config{database: "unix:/a.sock", noRestart: true}},
		{name: "double dash ends the options", args: []string{"--ike-daemon=native", "--", "-odd-db"},
			want: config{database: "-odd-db", ikeDaemon: "native"}},
		{name: "single dash is positional", args: []string{"-", "--bridge=b"}, want: config{database: "-", bridge: "b"}},
		{name: "single-dash flags after the database", args: []string{"unix:/a.sock", "-bridge=b", "-nic", "eth0"},
			want: config{database: "unix:/a.sock", bridge: "b"}},
		{name: "two databases", args: []string{"unix:/a.sock", "--ike-daemon=native", "unix:/b.sock"},
			wantErr: `expected at most one DATABASE argument, got "unix:/a.sock" and "unix:/b.sock"`},
		{name: "three databases", args: []string{"a", "b", "--", "c"}, wantErr: `got "a", "b" and "c"`},
		{name: "a bool flag's word value is a second positional", args: []string{"--direct-to-nic", "false", "unix:/a.sock"},
			wantErr: `got "false" and "unix:/a.sock"`},
		{name: "unknown flag", args: []string{"unix:/a.sock", "--no-such-flag"}, wantErr: "not defined: -no-such-flag"},
		{name: "value missing at the end", args: []string{"unix:/a.sock", "--bridge"}, wantErr: "needs an argument: -bridge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseArgs(tc.args, &bytes.Buffer{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%q: err = %v, want %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q: %v", tc.args, err)
			}
			want := tc.want
			if want.ikeDaemon == "" {
				want.ikeDaemon = "native"
			}
			if want.viciSocket == "" {
				want.viciSocket = "unix:///var/run/charon.vici"
			}
			got := config{database: c.database, pidfile: c.pidfile, ikeDaemon: c.ikeDaemon, bridge: c.bridge,
				viciSocket: c.viciSocket, noRestart: c.noRestart}
			if got.database != want.database || got.pidfile != want.pidfile || got.ikeDaemon != want.ikeDaemon ||
				got.bridge != want.bridge || got.viciSocket != want.viciSocket || got.noRestart != want.noRestart {
				t.Fatalf("%q:\n got %+v\nwant %+v", tc.args, got, want)
			}
		})
	}
}

func TestSelectBackend(t *testing.T) {
	const nat = "--bridge=br-phy --nic=eth0"
	tests := []struct {
		args     string
		backend  string   // the backend selected
		warnings []string // exactly these
		wantErr  string   // substring of the error; "" for none
	}{
		{args: "--ike-daemon=strongswan", backend: "strongswan"},
		{args: "--ike-daemon=STRONGSWAN", backend: "strongswan"},
		{args: "--ike-daemon=native " + nat, backend: "native"},
		{args: nat, backend: "native"}, // the default
		{args: "--ike-daemon=native", wantErr: "--ike-daemon=native needs --bridge=<br-phy> and --nic=<its underlay port>"},
		{args: "--ike-daemon=native --bridge=br-phy", wantErr: "needs --bridge"},
		{args: "--ike-daemon=native --require-ipsec " + nat, backend: "native"},
		{args: "--ike-daemon=native --engine-port-type=tap " + nat, backend: "native"},
		{args: "--ike-daemon=native --engine-port-type=TAP " + nat, backend: "native"},
		{args: "--ike-daemon=native --engine-port-type=af_xdp " + nat, wantErr: `--engine-port-type: unknown engine port type "af_xdp": want veth or tap`},
		{args: "--ike-daemon=native --local-ip=2001:db8::1 " + nat, wantErr: `--local-ip "2001:db8::1": want an IPv4 address`},
		{args: "--ike-daemon=native --local-ip=192.0.2.1 " + nat, backend: "native"},
		// Today's refusal, from the table now.
		{args: "--ike-daemon=strongswan --require-ipsec",
			wantErr: "--require-ipsec needs --ike-daemon=native: only the native backend can drop the packets of a tunnel that has no IPsec configuration"},
		{args: "--ike-daemon=strongswan --require-ipsec=true", wantErr: "--require-ipsec needs --ike-daemon=native"},
		// Asking for nothing: ignored, with a warning.
		{args: "--ike-daemon=strongswan --require-ipsec=false", backend: "strongswan",
			warnings: []string{"--require-ipsec applies only to --ike-daemon=native; ignored with --ike-daemon=strongswan"}},
		{args: "--ike-daemon=strongswan " + nat + " --engine-port-type=tap", backend: "strongswan",
			warnings: []string{
				"--bridge applies only to --ike-daemon=native; ignored with --ike-daemon=strongswan",
				"--nic applies only to --ike-daemon=native; ignored with --ike-daemon=strongswan",
				"--engine-port-type applies only to --ike-daemon=native; ignored with --ike-daemon=strongswan",
			}},
		{args: "--ike-daemon=native --vici-socket=unix:///run/charon.vici " + nat, backend: "native",
			warnings: []string{"--vici-socket applies only to --ike-daemon=strongswan; ignored with --ike-daemon=native"}},
		// Another backend's flags are checked before the backend's own.
		{args: "--ike-daemon=strongswan --engine-port-type=af_xdp", backend: "strongswan",
			warnings: []string{"--engine-port-type applies only to --ike-daemon=native; ignored with --ike-daemon=strongswan"}},
		{args: "--ike-daemon=libreswan", backend: "libreswan"},
		{args: "--ike-daemon=libreswan --ipsec-conf=/etc/ipsec.d/ovn.conf --root-ipsec-conf=/etc/ipsec.conf --use-default-crypto --no-restart-ike-daemon --command-timeout=30", backend: "libreswan"},
		{args: "--ike-daemon=libreswan --command-timeout=0", wantErr: "--command-timeout=0: want a positive number of seconds"},
		{args: "--ike-daemon=libreswan --ipsec-conf=ipsec.conf", wantErr: `--ipsec-conf="ipsec.conf": want an absolute path`},
		{args: "--ike-daemon=libreswan --ipsec-secrets=/etc/ipsec.conf", wantErr: "--ipsec-conf and --ipsec-secrets name the same file"},
		{args: "--ike-daemon=strongswan --ipsec-conf=/etc/ipsec.conf", backend: "strongswan",
			warnings: []string{"--ipsec-conf applies only to --ike-daemon=libreswan; ignored with --ike-daemon=strongswan"}},
		{args: "--ike-daemon=racoon", wantErr: `--ike-daemon="racoon": the IKE daemon should be native, strongswan or libreswan`},
	}
	for _, tc := range tests {
		c, err := parseArgs(strings.Fields(tc.args), &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%s: parseArgs: %v", tc.args, err)
		}
		spec, warnings, err := selectBackend(c)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.args, err)
			continue
		}
		if spec.name != tc.backend || !slices.Equal(warnings, tc.warnings) {
			t.Errorf("%s: backend %s, warnings %q; want %s, %q", tc.args, spec.name, warnings, tc.backend, tc.warnings)
		}
	}
}

// helpUsages runs --help and returns every flag's usage text.
func helpUsages(t *testing.T) map[string]string {
	t.Helper()
	var out bytes.Buffer
	if _, err := parseArgs([]string{"--help"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	usages := map[string]string{}
	name := ""
	for _, l := range strings.Split(out.String(), "\n") {
		if m := regexp.MustCompile(`^  -([a-z-]+)`).FindStringSubmatch(l); m != nil {
			name = m[1]
			continue
		}
		if name != "" && strings.HasPrefix(l, "    \t") {
			usages[name] += strings.TrimPrefix(l, "    \t")
		}
	}
	if len(usages) == 0 {
		t.Fatalf("no flags in --help:\n%s", out.String())
	}
	return usages
}

// The table names real flags, each under one backend, and --help says
// which backend every backend-specific flag belongs to.
func TestBackendTable(t *testing.T) {
	usages := helpUsages(t)
	owner := map[string]string{}
	for _, b := range backends {
		if b.refused != "" {
			if b.build != nil || len(b.flags) != 0 {
				t.Errorf("%s: refused, yet with a constructor or flags", b.name)
			}
			if !strings.Contains(usages["ike-daemon"], b.name+": "+b.refused) {
				t.Errorf("--help for --ike-daemon does not say that %s is refused: %q", b.name, usages["ike-daemon"])
			}
			continue
		}
		if b.build == nil || b.validate == nil {
			t.Errorf("%s: no constructor or validation", b.name)
		}
		if !strings.Contains(usages["ike-daemon"], b.name) {
			t.Errorf("--help for --ike-daemon does not list %s: %q", b.name, usages["ike-daemon"])
		}
		for _, f := range b.flags {
			if o, dup := owner[f.name]; dup {
				t.Errorf("--%s belongs to both %s and %s", f.name, o, b.name)
			}
			owner[f.name] = b.name
			u, ok := usages[f.name]
			if !ok {
				t.Errorf("%s: --%s is not a flag of ovnsecd", b.name, f.name)
				continue
			}
			want := "only with --ike-daemon=" + b.name + ": "
			if f.refuse != "" {
				want = "only with --ike-daemon=" + b.name + " (refused with another backend): "
			}
			if !strings.HasPrefix(u, want) {
				t.Errorf("--help for --%s does not start with %q: %q", f.name, want, u)
			}
		}
	}
	for name, u := range usages {
		if owner[name] == "" && strings.Contains(u, "only with --ike-daemon") {
			t.Errorf("--%s is marked backend-specific in --help but is in no backend's flags: %q", name, u)
		}
	}
}

// A flag refused under other backends is one whose meaning needs a
// backend that can drop packets (backend.Guard); the system derives "no
// drop" from the built backend the same way.
func TestBackendGuards(t *testing.T) {
	guards := map[string]bool{}
	_, guards["native"] = any((*native.Backend)(nil)).(backend.Guard)
	_, guards["strongswan"] = any((*strongswan.Backend)(nil)).(backend.Guard)
	_, guards["libreswan"] = any((*libreswan.Backend)(nil)).(backend.Guard)
	for _, b := range backends {
		if b.refused != "" {
			continue
		}
		g, known := guards[b.name]
		if !known {
			t.Errorf("%s: add it to this test", b.name)
		}
		for _, f := range b.flags {
			if f.refuse != "" && !g {
				t.Errorf("--%s is refused elsewhere for needing a dropping backend, but %s is no backend.Guard", f.name, b.name)
			}
		}
	}
	if !guards["native"] || guards["strongswan"] || guards["libreswan"] {
		t.Errorf("guards = %v: want native only", guards)
	}
}
