package nsconf

import (
	"os"
	"strings"
	"testing"
)

func seedFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kvMap is a section's keys as key=value strings.
func kvMap(s section) map[string]string {
	m := map[string]string{}
	for _, e := range s.kvs {
		m[e.key] = e.val
	}
	return m
}

// TestReadNMStateNNCP: OpenShift's documented NodeNetworkConfigurationPolicy
// (spec.desiredState.interfaces) gives one section named after the
// interface, its libreswan keys with their lines, YAML scalars as text.
func TestReadNMStateNNCP(t *testing.T) {
	secs, errs := readNMState("nncp.yaml", seedFile(t, "nncp-transport.yaml"))
	if len(errs) != 0 || len(secs) != 1 {
		t.Fatalf("secs %+v errs %v", secs, errs)
	}
	s := secs[0]
	if s.name != "hosta_conn" || s.form != formYAML || s.src != (Source{"nncp.yaml", 10}) || len(s.errs) != 0 || s.down {
		t.Fatalf("section %+v", s)
	}
	m := kvMap(s)
	if len(m) != 11 || m["left"] != "%defaultroute" || m["leftmodecfgclient"] != "false" || m["type"] != "transport" || m["rightsubnet"] != "10.1.1.1/32" {
		t.Errorf("keys %v", m)
	}
	if s.kvs[0].src.Line != 13 {
		t.Errorf("first key at %v", s.kvs[0].src)
	}
}

// TestReadNMStateState: an nmstate state with several documents; other
// interface types are not ours; state absent is not loaded; description
// and ipv4 {enabled: false} are accepted.
func TestReadNMStateState(t *testing.T) {
	secs, errs := readNMState("s.yaml", seedFile(t, "state-psk.yaml"))
	if len(errs) != 0 || len(secs) != 2 {
		t.Fatalf("secs %+v errs %v", secs, errs)
	}
	if secs[0].name != "dc" || len(secs[0].errs) != 0 || kvMap(secs[0])["psk"] != "swordfish" || kvMap(secs[0])["salifetime"] != "3600" {
		t.Errorf("dc %+v", secs[0])
	}
	if secs[1].name != "old" || !secs[1].down || len(secs[1].errs) != 0 {
		t.Errorf("old %+v", secs[1])
	}
}

// TestReadNMStateRefused: what cannot be read is refused with its line:
// unknown interface keys, mode config, lists, aliases, empty values,
// non-key names, missing name or libreswan.
func TestReadNMStateRefused(t *testing.T) {
	secs, errs := readNMState("r.yaml", seedFile(t, "refused.yaml"))
	wantFile := []string{
		"r.yaml:17: an interface of type ipsec needs name:",
		"r.yaml:18: name: connection name \"a/b\"",
		"r.yaml:25: an interface must be a mapping",
	}
	if len(errs) != len(wantFile) {
		t.Fatalf("file errors %v", errs)
	}
	for i, w := range wantFile {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("file error %d = %q, want prefix %q", i, errs[i].Error(), w)
		}
	}
	if len(secs) != 3 {
		t.Fatalf("sections %+v", secs)
	}
	wantBad := []string{
		"r.yaml:4: conn bad: interface key \"mtu\" is not used",
		"r.yaml:5: conn bad: ipv4: an address from the gateway (mode config) is not supported",
		"r.yaml:12: conn bad: rightsubnet: want a single value",
		"r.yaml:14: conn bad: rightid: YAML aliases",
		"r.yaml:15: conn bad: leftcert: no value",
		"r.yaml:16: conn bad: libreswan key: key \"Right\"",
	}
	if got := secs[0].errs; len(got) != len(wantBad) {
		t.Fatalf("bad errors %v", got)
	}
	for i, w := range wantBad {
		if !strings.HasPrefix(secs[0].errs[i].Error(), w) {
			t.Errorf("bad error %d = %q, want prefix %q", i, secs[0].errs[i].Error(), w)
		}
	}
	if m := kvMap(secs[0]); m["encapsulation"] != "yes" || m["frob"] != "1" {
		t.Errorf("keys refused later (by the build stage) must be kept: %v", m)
	}
	if secs[1].name != "nolib" || len(secs[1].errs) != 1 || !strings.Contains(secs[1].errs[0].Msg, "needs a libreswan: mapping") {
		t.Errorf("nolib %+v", secs[1])
	}
	if secs[2].name != "listlib" || len(secs[2].errs) != 1 || !strings.Contains(secs[2].errs[0].Error(), "r.yaml:24: conn listlib: libreswan: want a mapping") {
		t.Errorf("listlib %+v", secs[2])
	}
}

// TestReadNMStateBadDocuments: YAML syntax errors name their line; a
// document that is not nmstate says what is wanted; empty documents are
// nothing.
func TestReadNMStateBadDocuments(t *testing.T) {
	cases := map[string]string{
		"interfaces:\n- name: x\n  type: ipsec\n   libreswan: {\n": "y.yaml:4: not valid YAML",
		"- a\n- b\n":                                   "y.yaml:1: no interfaces: list",
		"kind: Foo\nspec:\n  other: 1\n":               "y.yaml:1: no interfaces: list",
		"interfaces: 3\n":                              "y.yaml:1: interfaces: want a list",
		"spec:\n  desiredState:\n    interfaces: {}\n": "y.yaml:3: interfaces: want a list",
	}
	for in, want := range cases {
		_, errs := readNMState("y.yaml", []byte(in))
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), want) {
			t.Errorf("%q: %v; want %q", in, errs, want)
		}
	}
	for _, in := range []string{"", "---\n", "# nothing\n", "~\n", "---\n---\n"} {
		if secs, errs := readNMState("y.yaml", []byte(in)); len(secs) != 0 || len(errs) != 0 {
			t.Errorf("%q: %+v %v", in, secs, errs)
		}
	}
}
