// Tests of the command line: flag checks and defaults of both commands,
// and the key=value output.

package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseRun(t *testing.T) {
	base := []string{"-local", "198.51.100.1", "-remote", "198.51.100.126", "-psk", "k"}
	for _, tc := range []struct {
		name string
		args []string
		err  string // "" = valid
		env  string
		chk  func(t *testing.T, c loadConfig)
	}{
		{name: "defaults", args: base, chk: func(t *testing.T, c loadConfig) {
			if len(c.Locals) != 16 || c.Locals[15].String() != "198.51.100.16" {
				t.Errorf("locals %v, want 16 from .1", c.Locals)
			}
			if c.RemoteIKE != 500 || c.RemoteNATT != 4500 || c.PortIKE != 500 || c.PortNATT != 4500 {
				t.Errorf("ports %d/%d local %d/%d, want 500/4500", c.RemoteIKE, c.RemoteNATT, c.PortIKE, c.PortNATT)
			}
			if c.Duration != 10*time.Second || c.Warmup != time.Second || c.Timeout != 5*time.Second {
				t.Errorf("durations %v %v %v", c.Duration, c.Warmup, c.Timeout)
			}
			if c.IKEProposal != "aes256gcm16-prfsha256-x25519" || c.ESPProposal != "aes256gcm16" || string(c.PSK) != "k" {
				t.Errorf("proposals %q %q psk %q", c.IKEProposal, c.ESPProposal, c.PSK)
			}
		}},
		{name: "knobs", args: append([]string{"-n", "3", "-duration", "2s", "-warmup", "0s", "-responder-pid", "42", "-remote-natt", "14500"}, base...),
			chk: func(t *testing.T, c loadConfig) {
				if len(c.Locals) != 3 || c.Duration != 2*time.Second || c.Warmup != 0 || c.ResponderPID != 42 || c.RemoteNATT != 14500 {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "psk from env", args: []string{"-local", "198.51.100.1", "-remote", "198.51.100.126"}, env: "fromenv",
			chk: func(t *testing.T, c loadConfig) {
				if string(c.PSK) != "fromenv" {
					t.Errorf("psk %q", c.PSK)
				}
			}},
		{name: "no psk", args: []string{"-local", "198.51.100.1", "-remote", "198.51.100.126"}, err: "pre-shared key"},
		{name: "no local", args: []string{"-remote", "198.51.100.126", "-psk", "k"}, err: "-local is required"},
		{name: "bad remote", args: []string{"-local", "198.51.100.1", "-remote", "x", "-psk", "k"}, err: "-remote"},
		{name: "too many", args: append([]string{"-n", "300"}, base...), err: "do not fit"},
		{name: "bad port", args: append([]string{"-remote-port", "0"}, base...), err: "not a port"},
		{name: "zero duration", args: append([]string{"-duration", "0s"}, base...), err: "duration"},
		{name: "bad level", args: append([]string{"-log-level", "loud"}, base...), err: "-log-level"},
		{name: "stray argument", args: append(base, "extra"), err: "unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("IKELOAD_PSK", tc.env)
			c, _, _, err := parseRun(tc.args, io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.chk(t, c)
		})
	}
}

func TestParseRunProfile(t *testing.T) {
	args := []string{"-local", "198.51.100.1", "-remote", "198.51.100.126", "-psk", "k"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{args, ""},
		{append([]string{"-cpuprofile", "/tmp/gen.cpu"}, args...), "/tmp/gen.cpu"},
	} {
		_, _, prof, err := parseRun(tc.args, io.Discard)
		if err != nil || prof != tc.want {
			t.Errorf("%q: profile %q (%v), want %q", tc.args, prof, err, tc.want)
		}
	}
}

func TestParseRespond(t *testing.T) {
	t.Setenv("IKELOAD_PSK", "")
	c, f, err := parseRespond([]string{"-local", "198.51.100.126", "-peers", "198.51.100.1", "-n", "4", "-psk", "k"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f != nil {
		t.Error("a log file was opened without -log-file")
	}
	if len(c.Peers) != 4 || c.Peers[3].String() != "198.51.100.4" || c.Local.String() != "198.51.100.126" {
		t.Errorf("got %+v", c)
	}
	for _, args := range [][]string{
		{"-peers", "198.51.100.1", "-psk", "k"},
		{"-local", "198.51.100.126", "-psk", "k"},
		{"-local", "198.51.100.126", "-peers", "198.51.100.1"},
		{"-local", "198.51.100.126", "-peers", "198.51.100.250", "-n", "10", "-psk", "k"},
	} {
		if _, _, err := parseRespond(args, io.Discard); err == nil {
			t.Errorf("parseRespond(%q): no error", args)
		}
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"fly"}} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("run(%q) = %v, want the usage", args, err)
		}
	}
}

func TestPrintResult(t *testing.T) {
	r := result{Workers: 2, Seconds: 1, Completed: 10, PerSecond: 10, P50ms: 1.5, ResponderPerHSms: 0.25}
	var b bytes.Buffer
	if err := printResult(&b, r, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"workers=2 ", "completed=10 ", "per_s=10.0 ", "p50_ms=1.50 ", "responder_cpu_ms_per_handshake=0.250 "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("%q lacks %q", b.String(), want)
		}
	}
	b.Reset()
	if err := printResult(&b, r, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"completed":10,`) || !strings.HasSuffix(b.String(), "}\n") {
		t.Errorf("JSON output %q", b.String())
	}
}
