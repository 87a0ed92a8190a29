package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovnsec/ovnsec/internal/datapath/drop"
	"github.com/ovnsec/ovnsec/internal/datapath/tun"
)

func TestParseOptions(t *testing.T) {
	key20 := strings.Repeat("ab", 20)
	key36 := strings.Repeat("cd", 36)
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("key-out "+key20+"\nkey-in "+key36+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := []string{"--static-keys-for-testing", "--local", "192.0.2.1", "--remote", "192.0.2.2",
		"--addr", "203.0.113.1/32", "--remote-net", "203.0.113.2/32, 198.51.100.0/24",
		"--spi-out", "0x1001", "--spi-in", "8194", "--key-file", keys}
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
	o, err := parseOptions(good, nil, io.Discard)
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
		{"key-out on the command line", with("--key-out", key20), "--key-out: keys on the command line are visible"},
		{"key-in on the command line", with("--key-in", key36), "--key-file"},
		{"no key file", without("--key-file"), "--key-file is required"},
		{"missing key file", with("--key-file", keys+".nope"), "--key-file: open"},
		{"bad port", with("--port", "70000"), "--port"},
		{"extra args", append(append([]string(nil), good...), "extra"), "unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseOptions(tc.args, nil, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestReport(t *testing.T) {
	var s tun.Stats
	s.TxPackets = 3
	s.RxDrops[drop.Replay] = 2
	r := report(s)
	if r.TxPackets != 3 || r.RxDrops["drop_replay"] != 2 || len(r.RxDrops) != 1 || len(r.TxDrops) != 0 {
		t.Fatalf("report %+v", r)
	}
}
