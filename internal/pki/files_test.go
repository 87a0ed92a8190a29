package pki

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteAll(t *testing.T) {
	dir := t.TempDir()
	existing := writeTestFile(t, dir, "existing", []byte("old"))
	notDir := writeTestFile(t, dir, "plainfile", []byte("x"))
	newFile := filepath.Join(dir, "new")

	// A later failure undoes the earlier outputs: the new file is removed
	// and the replaced one gets its old contents back.
	err := writeAll([]output{
		{path: newFile, data: []byte("n"), mode: modeKey},
		{path: existing, data: []byte("replaced"), mode: modeFile, replace: true},
		{path: filepath.Join(notDir, "child"), data: []byte("c"), mode: modeFile},
	}, false)
	if err == nil {
		t.Fatal("write under a plain file succeeded")
	}
	if _, err := os.Stat(newFile); err == nil {
		t.Error("new file left behind after failure")
	}
	if got := readString(t, existing); got != "old" {
		t.Errorf("replaced file not restored: %q", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("temporary files left: %v", ents)
	}

	tests := []struct {
		name    string
		out     output
		force   bool
		wantErr error
		want    string
		mode    os.FileMode
	}{
		{"new key", output{path: newFile, data: []byte("k"), mode: modeKey}, false, nil, "k", 0o600},
		{"existing without force", output{path: newFile, data: []byte("k2"), mode: modeKey}, false, ErrExists, "k", 0o600},
		{"existing with force", output{path: newFile, data: []byte("k3"), mode: modeFile}, true, nil, "k3", 0o644},
		{"bookkeeping replaced without force", output{path: existing, data: []byte("v2"), mode: modeFile, replace: true}, false, nil, "v2", 0o644},
	}
	for _, tc := range tests {
		err := writeAll([]output{tc.out}, tc.force)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
		}
		if got := readString(t, tc.out.path); got != tc.want {
			t.Errorf("%s: contents %q, want %q", tc.name, got, tc.want)
		}
		if m := mode(t, tc.out.path); m != tc.mode {
			t.Errorf("%s: mode %v, want %v", tc.name, m, tc.mode)
		}
	}
}
