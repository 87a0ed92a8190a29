// Fuzz targets of every parser: the libreswan conf syntax, the secrets
// syntax, nmstate YAML, and the whole directory pipeline. Seeds are in
// testdata/fuzz; none may panic, and what they accept must be valid.

package nsconf

import (
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzReadConf: readConf never panics; every error names the file and a
// line of it; every key read is a well-formed key.
func FuzzReadConf(f *testing.F) {
	f.Add([]byte("conn dc\n    left=%defaultroute\n    right=192.0.2.1\n    auto=start\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		secs, errs := readConf("f.conf", data, slog.New(slog.DiscardHandler))
		lines := strings.Count(string(data), "\n") + 1
		for _, s := range secs {
			errs = append(errs, s.errs...)
			if s.name != defaultSection && checkName(s.name) != nil {
				t.Fatalf("section name %q", s.name)
			}
			for _, e := range s.kvs {
				if checkKey(e.key) != nil || e.src.Line < 1 || e.src.Line > lines {
					t.Fatalf("kv %+v", e)
				}
			}
		}
		for _, e := range errs {
			if e.Source.File != "f.conf" || e.Source.Line < 1 || e.Source.Line > lines || e.Msg == "" {
				t.Fatalf("error %+v", e)
			}
		}
	})
}

// FuzzReadSecrets: readSecrets never panics; every entry has a key and
// its place; an entry written back in libreswan's syntax reads the same.
func FuzzReadSecrets(f *testing.F) {
	f.Add([]byte("%any 192.0.2.1 : PSK \"swordfish\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, errs := readSecrets("f.secrets", data)
		lines := strings.Count(string(data), "\n") + 1
		for _, e := range errs {
			if e.Source.File != "f.secrets" || e.Source.Line < 1 || e.Source.Line > lines || e.Msg == "" {
				t.Fatalf("error %+v", e)
			}
		}
		for _, e := range entries {
			if !e.psk.IsSet() || e.src.Line < 1 || e.src.Line > lines {
				t.Fatalf("entry %+v", e)
			}
			key := e.psk.Reveal()
			if strings.ContainsAny(key, "\"\n\r") || !utf8.ValidString(key) {
				continue
			}
			var b strings.Builder
			for _, id := range e.ids {
				if id.Kind == IDDN {
					b.WriteString(`"` + id.String() + `" `)
				} else {
					b.WriteString(id.String() + " ")
				}
			}
			b.WriteString(": PSK \"" + key + "\"\n")
			again, errs := readSecrets("g.secrets", []byte(b.String()))
			if len(errs) != 0 || len(again) != 1 || again[0].psk.Reveal() != key || len(again[0].ids) != len(e.ids) {
				t.Fatalf("%q read back as %+v, %v", b.String(), again, errs)
			}
			for i := range e.ids {
				if !sameID(e.ids[i], again[0].ids[i]) && !(e.ids[i].Kind == IDAny && again[0].ids[i].Kind == IDAny) {
					t.Fatalf("id %d: %+v read back as %+v", i, e.ids[i], again[0].ids[i])
				}
			}
		}
	})
}

// FuzzReadNMState: readNMState never panics, whatever the YAML parser
// meets; every section has a valid name, every key is well formed and
// every place is a line of the file.
func FuzzReadNMState(f *testing.F) {
	f.Add([]byte("interfaces:\n- name: dc\n  type: ipsec\n  libreswan:\n    right: 192.0.2.1\n    psk: x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		secs, errs := readNMState("f.yaml", data)
		// YAML breaks lines at \r too, and reports the end of the stream
		// on the line after the last.
		lines := strings.Count(string(data), "\n") + strings.Count(string(data), "\r") + 2
		for _, s := range secs {
			errs = append(errs, s.errs...)
			if checkName(s.name) != nil || s.form != formYAML || s.src.Line < 1 || s.src.Line > lines {
				t.Fatalf("section %+v", s)
			}
			for _, e := range s.kvs {
				if checkKey(e.key) != nil || e.src.Line < 1 || e.src.Line > lines {
					t.Fatalf("kv %+v", e)
				}
			}
		}
		for _, e := range errs {
			if e.Source.File != "f.yaml" || e.Source.Line < 0 || e.Source.Line > lines || e.Msg == "" {
				t.Fatalf("error %+v", e)
			}
		}
	})
}
