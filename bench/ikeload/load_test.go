// End-to-end test of the generator against ovnsec's responder over UDP on
// loopback addresses (no root needed: the kernel picks the ports).

package main

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// startResponder runs an ovnsec responder on 127.0.0.2 for n generator
// addresses from first, until the test ends.
func startResponder(t *testing.T, first netip.Addr, n int, psk string) *responder {
	t.Helper()
	peers, err := addrRange(first, n)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newResponder(respondConfig{Local: netip.MustParseAddr("127.0.0.2"), PortIKE: -1, PortNATT: -1,
		Peers: peers, PSK: []byte(psk), IKEProposal: "aes256gcm16-prfsha256-x25519", ESPProposal: "aes256gcm16"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func loopbackLoad(t *testing.T, r *responder, first netip.Addr, n int, psk string) loadConfig {
	t.Helper()
	locals, err := addrRange(first, n)
	if err != nil {
		t.Fatal(err)
	}
	ike, natt := r.e.LocalPorts()
	return loadConfig{Locals: locals, PortIKE: -1, PortNATT: -1, Remote: netip.MustParseAddr("127.0.0.2"),
		RemoteIKE: ike, RemoteNATT: natt, PSK: []byte(psk),
		IKEProposal: "aes256gcm16-prfsha256-x25519", ESPProposal: "aes256gcm16",
		Warmup: 200 * time.Millisecond, Duration: 800 * time.Millisecond, Timeout: 2 * time.Second,
		ResponderPID: os.Getpid()}
}

func TestLoadAgainstOvnsecResponder(t *testing.T) {
	first := netip.MustParseAddr("127.0.3.1")
	r := startResponder(t, first, 3, "secret")
	res, err := runLoad(context.Background(), loopbackLoad(t, r, first, 3, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Completed < 10 || res.Failed != 0 || len(res.FailReasons) != 0 {
		t.Fatalf("completed %d failed %d (%v), want >= 10 and 0", res.Completed, res.Failed, res.FailReasons)
	}
	if res.PerSecond <= 0 || res.P50ms <= 0 || res.P99ms < res.P50ms || res.MaxMs < res.P99ms {
		t.Errorf("rate %.1f p50 %.2f p99 %.2f max %.2f: not ordered", res.PerSecond, res.P50ms, res.P99ms, res.MaxMs)
	}
	if !strings.HasPrefix(res.Child, "tunnel, encap true, AES-GCM-256") {
		t.Errorf("child %q, want tunnel mode, ESP-in-UDP, AES-GCM-256", res.Child)
	}
	if res.ResponderCPUms < 0 || res.GeneratorCPUms < 0 {
		t.Errorf("CPU times %v %v", res.ResponderCPUms, res.GeneratorCPUms)
	}
	// Every IKE SA was deleted: nothing stays established on the responder.
	deadline := time.Now().Add(2 * time.Second)
	for {
		var b strings.Builder
		r.report(&b)
		if strings.Contains(b.String(), " established=0 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("responder still holds SAs after the run: %s", b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := r.children.Load(); got < int64(res.Completed) {
		t.Errorf("responder saw %d Child SAs, generator counted %d in the window alone", got, res.Completed)
	}
}

func TestLoadWrongPSKFails(t *testing.T) {
	first := netip.MustParseAddr("127.0.4.1")
	r := startResponder(t, first, 2, "right")
	c := loopbackLoad(t, r, first, 2, "wrong")
	c.Timeout = 300 * time.Millisecond
	res, err := runLoad(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Completed != 0 || res.Failed == 0 || len(res.FailReasons) == 0 {
		t.Fatalf("completed %d failed %d reasons %v: want only failures", res.Completed, res.Failed, res.FailReasons)
	}
	for reason := range res.FailReasons {
		if !strings.Contains(reason, "no Child SA within 300ms") {
			t.Errorf("reason %q", reason)
		}
	}
}
