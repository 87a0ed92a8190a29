// Tests of the tool's configuration handling, and one handshake of two
// tool instances over loopback.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "c.json")
	os.WriteFile(js, []byte(`{"local":"127.0.0.1","remote":"127.0.0.2","psk":"x","local_id":"a","remote_id":"b","mode":"tunnel","local_ts":["10.0.0.1/32"],"remote_ts":["10.0.0.2/32"]}`), 0o600)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"lokal":"x"}`), 0o600)
	psk := filepath.Join(dir, "psk")
	os.WriteFile(psk, []byte("x\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"flags", []string{"-local", "127.0.0.1", "-remote", "127.0.0.2", "-psk-file", psk, "-local-id", "a", "-remote-id", "b"}, ""},
		{"json", []string{"-config", js}, ""},
		{"unknown json field", []string{"-config", bad}, "unknown field"},
		{"bad mode", []string{"-local", "127.0.0.1", "-remote", "127.0.0.2", "-psk-file", psk, "-mode", "bus"}, "use transport or tunnel"},
		{"no auth", []string{"-local", "127.0.0.1", "-remote", "127.0.0.2"}, "set -psk-file"},
		{"bad ts", []string{"-local", "127.0.0.1", "-remote", "127.0.0.2", "-psk-file", psk, "-local-ts", "10.0.0/8"}, "traffic selector"},
		{"missing cert", []string{"-local", "127.0.0.1", "-remote", "127.0.0.2", "-cert", "/nonexistent.pem", "-key", "k"}, "read certificate /nonexistent.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseArgs(tc.args, nil, &bytes.Buffer{})
			if err == nil {
				_, _, err = c.peer(&bytes.Buffer{})
			}
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

type syncBuf struct {
	mu chanMutex
	b  bytes.Buffer
}

type chanMutex chan struct{}

func (m chanMutex) lock()   { m <- struct{}{} }
func (m chanMutex) unlock() { <-m }

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.lock(); defer s.mu.unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.lock(); defer s.mu.unlock(); return s.b.String() }

func TestTwoInstances(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outA, outB := &syncBuf{mu: make(chanMutex, 1)}, &syncBuf{mu: make(chanMutex, 1)}
	psk := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(psk, []byte("tool-test-psk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"-psk-file", psk, "-port-ike", "15500", "-port-natt", "15501", "-remote-port-ike", "15500", "-remote-port-natt", "15501", "-dpd", "0"}
	errs := make(chan error, 2)
	go func() {
		errs <- run(ctx, append([]string{"-local", "127.0.0.2", "-remote", "127.0.0.1", "-local-id", "b", "-remote-id", "a"}, common...), nil, outB, &bytes.Buffer{})
	}()
	time.Sleep(100 * time.Millisecond)
	go func() {
		errs <- run(ctx, append([]string{"-local", "127.0.0.1", "-remote", "127.0.0.2", "-local-id", "a", "-remote-id", "b", "-initiate"}, common...), nil, outA, &bytes.Buffer{})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for (!strings.Contains(outA.String(), "established") || !strings.Contains(outB.String(), "established")) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var la, lb eventLine
	if err := json.Unmarshal([]byte(strings.SplitN(outA.String(), "\n", 2)[0]), &la); err != nil {
		t.Fatalf("a printed %q: %v", outA.String(), err)
	}
	if err := json.Unmarshal([]byte(strings.SplitN(outB.String(), "\n", 2)[0]), &lb); err != nil {
		t.Fatalf("b printed %q: %v", outB.String(), err)
	}
	if la.Event != "established" || la.InSPI != lb.OutSPI || la.OutSPI != lb.InSPI || la.Mode != "transport" {
		t.Fatalf("events do not pair: %+v / %+v", la, lb)
	}
	cancel()
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
