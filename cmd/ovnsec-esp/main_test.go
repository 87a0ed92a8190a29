package main

import (
	"io"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/datapath/tun"
)

func TestParseOptions(t *testing.T) {
	key20 := strings.Repeat("ab", 20)
	key36 := strings.Repeat("cd", 36)
	good := []string{"--static-keys-for-testing", "--local", "192.0.2.1", "--remote", "192.0.2.2",
		"--addr", "203.0.113.1/32", "--remote-net", "203.0.113.2/32, 198.51.100.0/24",
		"--spi-out", "0x1001", "--spi-in", "8194", "--key-out", key20, "--key-in", key36}
	with := func(flag, val string) []string {
		out := append([]string(nil), good...)
		for i := range out {
			if out[i] == flag {
				out[i+1] = val
				return out
			}
		}
		return append(out, flag, val)
	}
	without := func(flag string) []string {
		var out []string
		for i := 0; i < len(good); i++ {
			if good[i] == flag {
				if flag != "--static-keys-for-testing" {
					i++
				}
				continue
			}
			out = append(out, good[i])
		}
		return out
	}
	o, err := parseOptions(good, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.sys.Local.String() != "192.0.2.1:4500" || o.remote.String() != "192.0.2.2" || len(o.remoteNet) != 2 ||
		o.spiOut != 0x1001 || o.spiIn != 0x2002 || o.keyOut.Len() != 20 || o.keyIn.Len() != 36 ||
		o.sys.Addr.String() != "203.0.113.1/32" || o.sys.Name != "ovnsec0" {
		t.Fatalf("parsed %+v", o)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no acknowledgement", without("--static-keys-for-testing"), "static-keys-for-testing"},
		{"bad local", with("--local", "2001:db8::1"), "--local"},
		{"missing remote", without("--remote"), "--remote"},
		{"bad addr", with("--addr", "203.0.113.1"), "--addr"},
		{"bad remote net", with("--remote-net", "203.0.113.2/32,x"), "--remote-net"},
		{"reserved SPI", with("--spi-out", "255"), "--spi-out"},
		{"SPI too big", with("--spi-in", "0x100000000"), "--spi-in"},
		{"short key", with("--key-out", "abcd"), "--key-out"},
		{"not hex", with("--key-in", strings.Repeat("zz", 20)), "--key-in"},
		{"bad port", with("--port", "70000"), "--port"},
		{"extra args", append(append([]string(nil), good...), "extra"), "unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseOptions(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestReport(t *testing.T) {
	var s tun.Stats
	s.TxPackets = 3
	s.RxDrops[tun.DropReplay] = 2
	r := report(s)
	if r.TxPackets != 3 || r.RxDrops["replay"] != 2 || len(r.RxDrops) != 1 || len(r.TxDrops) != 0 {
		t.Fatalf("report %+v", r)
	}
}
