package nsconf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestSecretRedacted: no formatting path prints the key, not even the
// verbs that bypass String (%d, %t) or a struct holding it, slog or JSON.
func TestSecretRedacted(t *testing.T) {
	s := NewSecret("swordfish")
	if s.Reveal() != "swordfish" || !s.IsSet() || NewSecret("").IsSet() {
		t.Fatal("Reveal/IsSet")
	}
	c := Conn{Name: "dc", PSK: s}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%T", "%p"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c))
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "psk", s, "conn", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "psk", s, "conn", c)
	out = append(out, buf.String())
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j))
	for _, o := range out {
		if strings.Contains(o, "swordfish") || strings.Contains(o, fmt.Sprintf("%x", "swordfish")) {
			t.Errorf("the key leaks: %s", o)
		}
	}
	if got := fmt.Sprint(s); got != "<redacted>" {
		t.Errorf("Sprint = %q", got)
	}
	if got := fmt.Sprint(Secret{}); got != "None" {
		t.Errorf("empty = %q", got)
	}
}
