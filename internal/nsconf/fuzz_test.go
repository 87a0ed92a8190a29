// Fuzz targets of every parser: the libreswan conf syntax, the secrets
// syntax, nmstate YAML, and the whole directory pipeline. Seeds are in
// testdata/fuzz; none may panic, and what they accept must be valid.

package nsconf

import (
	"log/slog"
	"strings"
	"testing"
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
