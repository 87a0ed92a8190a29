package drop

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ovnsec/ovnsec/internal/esp"
)

// TestNamesStable pins the label set: tunnels/show prints these names and
// metrics export them, so changing one breaks users. Append new reasons
// here and in the const block; never rename or reorder.
func TestNamesStable(t *testing.T) {
	want := []string{
		"drop_malformed", "drop_not_ipv4", "drop_no_peer", "drop_no_policy", "drop_policy",
		"drop_fragment", "drop_too_big", "drop_no_sa", "drop_wrong_peer", "drop_replay",
		"drop_auth", "drop_expired", "drop_seq_overflow", "drop_dummy", "drop_inner_policy",
		"drop_keepalive", "drop_leak", "drop_send", "drop_device",
	}
	var got []string
	for _, r := range All() {
		got = append(got, r.String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("names\n got %q\nwant %q", got, want)
	}
	if len(All()) != int(NumReasons) {
		t.Fatalf("All has %d reasons, NumReasons is %d", len(All()), NumReasons)
	}
	snake := regexp.MustCompile(`^drop_[a-z0-9]+(_[a-z0-9]+)*$`)
	seen := map[string]bool{}
	for _, n := range got {
		if !snake.MatchString(n) {
			t.Errorf("%q is not a drop_ snake_case name", n)
		}
		if seen[n] {
			t.Errorf("%q used twice", n)
		}
		seen[n] = true
	}
}

func TestText(t *testing.T) {
	for _, r := range All() {
		b, err := r.MarshalText()
		if err != nil || string(b) != r.String() {
			t.Fatalf("%v: MarshalText = %q, %v", r, b, err)
		}
		var back Reason
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Fatalf("%v: UnmarshalText(%q) = %v, %v", r, b, back, err)
		}
	}
	if _, err := NumReasons.MarshalText(); err == nil {
		t.Error("MarshalText of NumReasons succeeded")
	}
	if s := Reason(200).String(); s != "drop_reason(200)" {
		t.Errorf("String of an invalid reason = %q", s)
	}
	var r Reason
	if err := r.UnmarshalText([]byte("replay")); err == nil || !strings.Contains(err.Error(), "drop_replay") {
		t.Errorf("UnmarshalText(replay) = %v, want an error listing the names", err)
	}
	// A map keyed by Reason encodes with the names.
	j, err := json.Marshal(map[Reason]uint64{Replay: 2, Auth: 1})
	if err != nil || string(j) != `{"drop_auth":1,"drop_replay":2}` {
		t.Fatalf("json = %s, %v", j, err)
	}
	var m map[Reason]uint64
	if err := json.Unmarshal(j, &m); err != nil || m[Replay] != 2 || m[Auth] != 1 || len(m) != 2 {
		t.Fatalf("json back = %v, %v", m, err)
	}
}

// espErrors is the mapping FromESP must implement, by the name of esp's
// error variable.
var espErrors = map[string]struct {
	err  error
	want Reason
}{
	"ErrShortBuffer":     {esp.ErrShortBuffer, TooBig},
	"ErrDirection":       {esp.ErrDirection, Policy},
	"ErrExpired":         {esp.ErrExpired, Expired},
	"ErrSeqOverflow":     {esp.ErrSeqOverflow, SeqOverflow},
	"ErrTruncated":       {esp.ErrTruncated, Malformed},
	"ErrMisaligned":      {esp.ErrMisaligned, Malformed},
	"ErrSPIMismatch":     {esp.ErrSPIMismatch, Malformed},
	"ErrReplay":          {esp.ErrReplay, Replay},
	"ErrAuth":            {esp.ErrAuth, Auth},
	"ErrBadPadding":      {esp.ErrBadPadding, Malformed},
	"ErrDummy":           {esp.ErrDummy, Dummy},
	"ErrNoSA":            {esp.ErrNoSA, NoSA},
	"ErrPolicy":          {esp.ErrPolicy, Policy},
	"ErrNotIPv4":         {esp.ErrNotIPv4, Malformed},
	"ErrNotIPv6":         {esp.ErrNotIPv6, Malformed},
	"ErrNotIP":           {esp.ErrNotIP, Malformed},
	"ErrFragment":        {esp.ErrFragment, Fragment},
	"ErrNotESP":          {esp.ErrNotESP, Malformed},
	"ErrIPv6Unsupported": {esp.ErrIPv6Unsupported, Policy},
}

func TestFromESP(t *testing.T) {
	for name, tc := range espErrors {
		if got := FromESP(tc.err); got != tc.want {
			t.Errorf("FromESP(esp.%s) = %v, want %v", name, got, tc.want)
		}
		if got := FromESP(fmt.Errorf("seal to 192.0.2.1: %w", tc.err)); got != tc.want {
			t.Errorf("FromESP(wrapped esp.%s) = %v, want %v", name, got, tc.want)
		}
	}
	if got := FromESP(errors.New("something else")); got != Malformed {
		t.Errorf("FromESP(other) = %v, want %v", got, Malformed)
	}
}

// TestFromESPCoversEveryError fails when esp gains a packet-path error
// that the mapping above does not name, so that its reason is a decision
// rather than the Malformed fallback.
func TestFromESPCoversEveryError(t *testing.T) {
	files, err := filepath.Glob("../../esp/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("esp sources: %v (%d files)", err, len(files))
	}
	fset := token.NewFileSet()
	var found []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") {
						found = append(found, n.Name)
					}
				}
			}
		}
	}
	if len(found) < 10 {
		t.Fatalf("found only %v in esp; is the path right?", found)
	}
	for _, n := range found {
		if _, ok := espErrors[n]; !ok {
			t.Errorf("esp.%s has no drop reason in this test's mapping; decide one in FromESP", n)
		}
	}
}

func TestFromESPNoAlloc(t *testing.T) {
	errs := []error{esp.ErrReplay, esp.ErrAuth, esp.ErrTruncated, esp.ErrIPv6Unsupported}
	var sink Reason
	if n := testing.AllocsPerRun(200, func() {
		for _, e := range errs {
			sink += FromESP(e)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
	_ = sink
}

func TestCounts(t *testing.T) {
	var c Counters
	var b Counts
	b[Replay] += 2
	b[Auth]++
	c.AddCounts(&b)
	c.Add(Leak, 0)
	c.Add(Leak, 3)
	s := c.Load()
	if s.Total() != 6 || s[Replay] != 2 || s[Auth] != 1 || s[Leak] != 3 {
		t.Fatalf("snapshot %v", s)
	}
	if m := s.Map(); len(m) != 3 || m["drop_replay"] != 2 || m["drop_auth"] != 1 || m["drop_leak"] != 3 {
		t.Fatalf("Map = %v", m)
	}
	if got := s.String(); got != "drop_replay=2 drop_auth=1 drop_leak=3" {
		t.Errorf("String = %q", got)
	}
	var zero Counts
	if zero.String() != "none" || zero.Map() == nil || len(zero.Map()) != 0 || zero.Total() != 0 {
		t.Errorf("zero counts: %q %v %d", zero.String(), zero.Map(), zero.Total())
	}
	if got := fmt.Sprintf("%+v", struct{ Drops Counts }{s}); got != "{Drops:drop_replay=2 drop_auth=1 drop_leak=3}" {
		t.Errorf("in a struct: %s", got)
	}
}

func TestCountersConcurrent(t *testing.T) {
	var c Counters
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b Counts
			b[NoSA] = 1
			for range 1000 {
				c.AddCounts(&b)
			}
		}()
	}
	wg.Wait()
	if s := c.Load(); s[NoSA] != 4000 || s.Total() != 4000 {
		t.Fatalf("snapshot %v", s)
	}
}

func TestAddCountsNoAlloc(t *testing.T) {
	var c Counters
	var b Counts
	b[Auth] = 1
	if n := testing.AllocsPerRun(200, func() { c.AddCounts(&b); c.Add(Send, 1) }); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}
