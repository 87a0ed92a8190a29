package strongswan

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
	"github.com/ovnsec/ovnsec/internal/tunnel"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestTunnelStatusPhases(t *testing.T) {
	installedOut := func(t testing.TB) *vici.Message {
		return childMsg(t, "gnv0-out-1", "3", "INSTALLED", "c1", "c2", []string{"192.0.2.1/32[udp]"}, []string{"192.0.2.2/32[udp/6081]"})
	}
	installedIn := func(t testing.TB) *vici.Message {
		return childMsg(t, "gnv0-in-1", "4", "INSTALLED", "c3", "c4", []string{"192.0.2.1/32[udp/6081]"}, []string{"192.0.2.2/32[udp]"})
	}
	loaded := map[ConnName]loadedConn{"gnv0-1": {Name: "gnv0-1", Children: map[ConnName]loadedChild{"gnv0-in-1": {}, "gnv0-out-1": {}}}}
	oldOnly := map[ConnName]loadedConn{"gnv0-0": {Name: "gnv0-0"}, "gnv0-2": {Name: "gnv0-2", Children: map[ConnName]loadedChild{"gnv0-in-2": {}, "gnv0-out-2": {}}}}
	type logLine struct{ id, conn, msg string }

	tests := []struct {
		name      string
		conns     map[ConnName]loadedConn
		sas       func(t testing.TB) []*vici.Message
		logs      []logLine
		streaming bool
		loadedAgo time.Duration
		initAgo   time.Duration // 0: never initiated
		phase     backend.Phase
		reason    string // prefix
		code      backend.Code
		active    int
	}{
		{name: "not loaded", conns: oldOnly, phase: backend.PhaseNotLoaded, reason: "charon holds no connection gnv0-1 (charon restarted", code: backend.CodeNotLoaded},
		{name: "up", conns: loaded, sas: func(t testing.TB) []*vici.Message {
			return []*vici.Message{listSAEvent(t, "gnv0-1", "7", "ESTABLISHED", installedOut(t), installedIn(t))}
		}, phase: backend.PhaseUp, code: backend.CodeNone, active: 2},
		{name: "up across two IKE_SAs (each side initiated its out child)", conns: loaded, sas: func(t testing.TB) []*vici.Message {
			return []*vici.Message{listSAEvent(t, "gnv0-1", "7", "ESTABLISHED", installedOut(t)), listSAEvent(t, "gnv0-1", "8", "ESTABLISHED", installedIn(t))}
		}, phase: backend.PhaseUp, code: backend.CodeNone, active: 2},
		{name: "kernel refused, from the log", conns: loaded, streaming: true, loadedAgo: time.Minute, sas: func(t testing.TB) []*vici.Message {
			return []*vici.Message{listSAEvent(t, "gnv0-1", "7", "ESTABLISHED")}
		}, logs: []logLine{
			{"7", "gnv0-1", "unable to add SAD entry with SPI cfbd3517 (FAILED)"},
			{"7", "gnv0-1", "received netlink error: Function not implemented (38)"},
			{"7", "gnv0-1", "unable to install inbound and outbound IPsec SA (SAD) in kernel"},
			{"7", "gnv0-1", "failed to establish CHILD_SA, keeping IKE_SA"},
		}, phase: backend.PhaseDown,
			reason: "IKE_SA established but no CHILD_SA: the kernel refused to install the SA (received netlink error: Function not implemented (38); unable to install inbound and outbound IPsec SA (SAD) in kernel) for gnv0-in-1, gnv0-out-1", code: backend.CodeKernelRefused},
		{name: "kernel refused one child, other up", conns: loaded, streaming: true, loadedAgo: time.Minute, sas: func(t testing.TB) []*vici.Message {
			return []*vici.Message{listSAEvent(t, "gnv0-1", "7", "ESTABLISHED", installedOut(t))}
		}, logs: []logLine{{"7", "gnv0-1", "received netlink error: No buffer space available (105)"}}, phase: backend.PhaseDown,
			reason: "IKE_SA established but no CHILD_SA: the kernel refused to install the SA (received netlink error: No buffer space available (105)) for gnv0-in-1", code: backend.CodeKernelRefused, active: 1},
		{name: "kernel log of another IKE_SA does not count", conns: loaded, streaming: true, loadedAgo: time.Minute, sas: func(t testing.TB) []*vici.Message {
			return []*vici.Message{listSAEvent(t, "gnv0-1", "7", "ESTABLISHED")}
		}, logs: []logLine{{"6", "", "received netlink error: Function not implemented (38)"}}, phase: backend.PhaseDown,
			reason: "IKE_SA established but no CHILD_SA gnv0-in-1, gnv0-out-1 (charon logged no error", code: backend.CodeWaitingForChild},
		{name: "peer refused", conns: loaded, streaming: true, loadedAgo: time.Minute, sas: func(t testing.TB) []*vici.Message {
			return []*vici.Message{listSAEvent(t, "gnv0-1", "7", "ESTABLISHED")}
		}, logs: []logLine{{"7", "gnv0-1", "received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built"}}, phase: backend.PhaseDown,
			reason: "IKE_SA established but the peer refused CHILD_SA gnv0-in-1, gnv0-out-1 (proposals or selectors differ, or the peer's kernel", code: backend.CodeWaitingForChild},
		{name: "no log stream: infer kernel", conns: loaded, loadedAgo: time.Minute, sas: func(t testing.TB) []*vici.Message {
			return []*vici.Message{listSAEvent(t, "gnv0-1", "7", "ESTABLISHED")}
		}, phase: backend.PhaseDown, reason: "IKE_SA established but no CHILD_SA: the kernel refused to install the SA (no ESP/XFRM support?) for gnv0-in-1, gnv0-out-1", code: backend.CodeKernelRefused},
		{name: "child being negotiated", conns: loaded, streaming: true, loadedAgo: time.Minute, sas: func(t testing.TB) []*vici.Message {
			return []*vici.Message{listSAEvent(t, "gnv0-1", "7", "ESTABLISHED", installedOut(t),
				childMsg(t, "gnv0-in-1", "9", "INSTALLING", "", "", nil, nil))}
		}, phase: backend.PhaseConnecting, reason: "IKE_SA established, negotiating CHILD_SA gnv0-in-1", code: backend.CodeNegotiating, active: 1},
		{name: "in child waits for the peer", conns: loaded, streaming: true, loadedAgo: 5 * time.Second, sas: func(t testing.TB) []*vici.Message {
			return []*vici.Message{listSAEvent(t, "gnv0-1", "7", "ESTABLISHED", installedOut(t))}
		}, phase: backend.PhaseConnecting, reason: "IKE_SA established, waiting for the peer to initiate gnv0-in-1", code: backend.CodeWaitingForChild, active: 1},
		{name: "IKE_SA connecting", conns: loaded, streaming: true, loadedAgo: time.Minute, sas: func(t testing.TB) []*vici.Message {
			return []*vici.Message{listSAEvent(t, "gnv0-1", "7", "CONNECTING")}
		}, logs: []logLine{{"", "gnv0-1", "retransmit 2 of request with message ID 0"}}, phase: backend.PhaseConnecting,
			reason: "IKE_SA negotiation with 192.0.2.2 under way: retransmit 2 of request with message ID 0", code: backend.CodeNegotiating},
		{name: "just initiated, no SA yet", conns: loaded, streaming: true, loadedAgo: time.Minute, initAgo: time.Second, phase: backend.PhaseConnecting, reason: "initiating IKE_SA with 192.0.2.2", code: backend.CodeNegotiating},
		{name: "no IKE_SA, with log", conns: loaded, streaming: true, loadedAgo: time.Minute, initAgo: time.Minute,
			logs:  []logLine{{"", "gnv0-1", "giving up after 5 retransmits"}},
			phase: backend.PhaseDown, reason: "no IKE_SA with 192.0.2.2: giving up after 5 retransmits", code: backend.CodeUnknown},
		{name: "no IKE_SA, failure logged after the last initiation", conns: loaded, streaming: true, loadedAgo: time.Minute, initAgo: time.Second,
			logs:  []logLine{{"", "gnv0-1", "received AUTHENTICATION_FAILED notify error"}},
			phase: backend.PhaseDown, reason: "no IKE_SA with 192.0.2.2: received AUTHENTICATION_FAILED notify error", code: CodeAuthFailed},
		{name: "no IKE_SA, our key missing", conns: loaded, streaming: true, loadedAgo: time.Minute, initAgo: time.Minute,
			logs:  []logLine{{"", "gnv0-1", "no private key found for 'ch1'"}},
			phase: backend.PhaseDown, reason: "no IKE_SA with 192.0.2.2: no private key found for 'ch1'", code: CodeAuthFailed},
		{name: "no IKE_SA, silent", conns: loaded, streaming: true, loadedAgo: time.Minute, phase: backend.PhaseDown,
			reason: "no IKE_SA with 192.0.2.2 (peer not answering or not configured?)", code: backend.CodeUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := New(Config{ViciSocket: "unix:///nonexistent/charon.vici", Clock: clocktest.New(t0)}, nil)
			b.logs.setStreaming(tc.streaming)
			for _, l := range tc.logs {
				if err := b.logs.add(msg(t, "group", "KNL", "level", "1", "ikesa-uniqueid", l.id, "ikesa-name", l.conn, "msg", l.msg)); err != nil {
					t.Fatal(err)
				}
			}
			tn := geneveTunnel()
			tn.Version = 1
			st := &tunnelState{t: tn, ike: "gnv0-1", children: []childSpec{{"gnv0-in-1", DirIn}, {"gnv0-out-1", DirOut}},
				loadedAt: t0.Add(-tc.loadedAgo), initiated: map[ConnName]time.Time{}}
			if tc.initAgo > 0 {
				st.initiated["gnv0-out-1"] = t0.Add(-tc.initAgo)
			}
			var sas []ikeSA
			if tc.sas != nil {
				sas = decodeSAs(t, tc.sas(t)...)
			}
			got := b.tunnelStatus(t0, st, tc.conns, sas)
			if got.Phase != tc.phase || !strings.HasPrefix(got.Reason, tc.reason) || got.Code != tc.code {
				t.Errorf("phase %q reason %q code %q\nwant %q reason prefix %q code %q", got.Phase, got.Reason, got.Code, tc.phase, tc.reason, tc.code)
			}
			if tc.sas == nil && (got.IKE != nil || len(got.Children) != 0) {
				t.Errorf("no IKE_SA listed, yet IKE %+v children %+v", got.IKE, got.Children)
			}
			if tc.sas != nil && got.IKE == nil && tc.phase != backend.PhaseNotLoaded {
				t.Error("IKE_SA listed but not described")
			}
			if len(got.Children) != tc.active {
				t.Errorf("%d children described, want the %d installed", len(got.Children), tc.active)
			}
			if tc.phase == backend.PhaseUp && got.Reason != "" {
				t.Errorf("up with reason %q", got.Reason)
			}
			active := 0
			for _, c := range got.Conns {
				if c.Active {
					active++
				}
			}
			if active != tc.active || len(got.Conns) != 2 {
				t.Errorf("%d active of %d conns, want %d of 2: %+v", active, len(got.Conns), tc.active, got.Conns)
			}
			if got.Name != "gnv0" || got.Version != 1 {
				t.Errorf("name/version %s/%d", got.Name, got.Version)
			}
		})
	}
}

func TestNotLoadedNamesOldVersion(t *testing.T) {
	b := New(Config{Clock: clocktest.New(t0)}, nil)
	tn := geneveTunnel()
	st := &tunnelState{t: tn, ike: "gnv0-3", children: []childSpec{{"gnv0-in-3", DirIn}, {"gnv0-out-3", DirOut}}, initiated: map[ConnName]time.Time{}}
	conns := map[ConnName]loadedConn{"gnv0-2": {Name: "gnv0-2", Children: map[ConnName]loadedChild{"gnv0-in-2": {}, "gnv0-out-2": {}}}}
	got := b.tunnelStatus(t0, st, conns, nil)
	if got.Phase != backend.PhaseNotLoaded || len(got.Details) != 1 || got.Details[0] != "charon still holds version 2 (gnv0-2)" {
		t.Errorf("got %+v", got)
	}
}

// Without charon: Ensure fails naming the socket, Status keeps reporting
// the tunnel with that reason, and nothing panics or blocks.
func TestCharonUnreachable(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "charon.vici")
	b := New(Config{ViciSocket: sock, CallTimeout: time.Second}, nil)
	ctx := context.Background()
	tn := geneveTunnel()
	tn.CustomOptions = []tunnel.Option{{Key: "foo", Value: "bar"}}
	err := b.Ensure(ctx, tn)
	wantPrefix := "strongSwan charon is not reachable at " + sock + ": "
	if err == nil || !strings.Contains(err.Error(), wantPrefix) {
		t.Fatalf("Ensure err = %v, want it to contain %q", err, wantPrefix)
	}
	st, err := b.Status(ctx)
	if err != nil {
		t.Fatalf("Status err = %v", err)
	}
	got, ok := st["gnv0"]
	if !ok || got.Phase != backend.PhaseDown || !strings.HasPrefix(got.Reason, wantPrefix) || got.Version != 3 || got.Code != backend.CodeBackendUnreachable {
		t.Errorf("Status = %+v", st)
	}
	if len(got.Details) != 1 || !strings.Contains(got.Details[0], "unsupported option ipsec_foo for the strongswan backend") {
		t.Errorf("unsupported option not listed in status details: %q", got.Details)
	}
	if _, err := b.Loaded(ctx); err == nil || !strings.Contains(err.Error(), wantPrefix) {
		t.Errorf("Loaded err = %v", err)
	}
	if _, err := b.Report(ctx, "ipsec/status"); err == nil {
		t.Error("Report without charon succeeded")
	}
	if _, err := b.Report(ctx, "bogus"); err == nil || !strings.Contains(err.Error(), "unknown report") {
		t.Errorf("Report(bogus) err = %v", err)
	}
	if err := b.Remove(ctx, "gnv0"); err == nil {
		t.Error("Remove without charon succeeded")
	}
	if err := b.Close(ctx, false); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := b.Ensure(ctx, tn); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Ensure after Close err = %v", err)
	}
	var uo *backend.UnsupportedOptionsError
	if errors.As(err, &uo) {
		t.Error("closed backend reported unsupported options instead of the failure")
	}

	tcp := New(Config{ViciSocket: "tcp://127.0.0.1:4502"}, nil)
	if err := tcp.Ensure(ctx, geneveTunnel()); err == nil || !strings.Contains(err.Error(), "unsupported VICI socket URI") {
		t.Errorf("tcp socket err = %v", err)
	}
	_ = tcp.Close(ctx, false)
}

func TestSocketPath(t *testing.T) {
	for in, want := range map[string]string{
		"unix:///var/run/charon.vici": "/var/run/charon.vici",
		"/run/x.vici":                 "/run/x.vici",
		"tcp://1.2.3.4:1":             "tcp://1.2.3.4:1",
	} {
		if got := socketPath(in); got != want {
			t.Errorf("socketPath(%q) = %q", in, got)
		}
	}
	if New(Config{}, nil).socket != DefaultViciSocket {
		t.Error("default socket")
	}
}

// The SAs behind a status are described as data, and the detail lines
// stay exactly what tunnels/show printed before they were.
func TestTypedStatus(t *testing.T) {
	b := New(Config{ViciSocket: "unix:///nonexistent/charon.vici", Clock: clocktest.New(t0)}, nil)
	out := childMsg(t, "gnv0-out-1", "3", "INSTALLED", "c1", "c2", []string{"192.0.2.1/32[udp]"}, []string{"192.0.2.2/32[udp/6081]"})
	for k, v := range map[string]string{"encap": "yes", "bytes-in": "1000", "packets-in": "10", "bytes-out": "2000", "packets-out": "20", "install-time": "30"} {
		if err := out.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	in := childMsg(t, "gnv0-in-1", "4", "INSTALLED", "c3", "c4", []string{"192.0.2.1/32[udp/6081]"}, []string{"192.0.2.2/32[udp]"})
	older := listSAEvent(t, "gnv0-1", "6", "ESTABLISHED", in)
	newer := listSAEvent(t, "gnv0-1", "7", "ESTABLISHED", out)
	sec := newer.Get("gnv0-1").(*vici.Message)
	for k, v := range map[string]string{"initiator-spi": "aaaa", "responder-spi": "bbbb", "nat-any": "yes", "nat-remote": "yes", "local-port": "4500", "remote-port": "4501", "established": "40"} {
		if err := sec.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := older.Get("gnv0-1").(*vici.Message).Set("established", "600"); err != nil {
		t.Fatal(err)
	}
	tn := geneveTunnel()
	tn.Version = 1
	st := &tunnelState{t: tn, ike: "gnv0-1", children: []childSpec{{"gnv0-in-1", DirIn}, {"gnv0-out-1", DirOut}}, initiated: map[ConnName]time.Time{}}
	conns := map[ConnName]loadedConn{"gnv0-1": {Name: "gnv0-1", Children: map[ConnName]loadedChild{"gnv0-in-1": {}, "gnv0-out-1": {}}}}
	got := b.tunnelStatus(t0, st, conns, decodeSAs(t, older, newer))

	wantIKE := &backend.IKESAStatus{State: "established", Initiator: true, SPIi: "aaaa", SPIr: "bbbb",
		Algorithms: "AES_GCM_16-256/PRF_HMAC_SHA2_256/MODP_2048", Encap: true, NATRemote: true, Established: t0.Add(-40 * time.Second)}
	if !reflect.DeepEqual(got.IKE, wantIKE) {
		t.Errorf("IKE = %+v\nwant %+v", got.IKE, wantIKE)
	}
	wantChildren := []backend.ChildSAStatus{
		{Name: "gnv0-in-1", InSPI: "c3", OutSPI: "c4", Algorithm: "AES_GCM_16-256", Encap: "none"},
		{Name: "gnv0-out-1", InSPI: "c1", OutSPI: "c2", Algorithm: "AES_GCM_16-256", Encap: "udp 4500->4501",
			Established: t0.Add(-30 * time.Second), BytesIn: 1000, PacketsIn: 10, BytesOut: 2000, PacketsOut: 20},
	}
	if !reflect.DeepEqual(got.Children, wantChildren) {
		t.Errorf("Children = %+v\nwant %+v", got.Children, wantChildren)
	}
	// The lines as the untyped status rendered them (before the typed
	// fields existed), byte for byte.
	wantDetails := []string{
		"gnv0-1[6]: ESTABLISHED 10m0s ago, 192.0.2.1[192.0.2.1]...192.0.2.2[192.0.2.2], AES_GCM_16-256/PRF_HMAC_SHA2_256/MODP_2048",
		"gnv0-in-1{4}:  INSTALLED, TRANSPORT, reqid 4, ESP SPIs: c3_i c4_o, AES_GCM_16-256, 192.0.2.1/32[udp/6081] === 192.0.2.2/32[udp]",
		"gnv0-1[7]: ESTABLISHED 40s ago, 192.0.2.1[192.0.2.1]...192.0.2.2[192.0.2.2], AES_GCM_16-256/PRF_HMAC_SHA2_256/MODP_2048",
		"gnv0-out-1{3}:  INSTALLED, TRANSPORT-in-UDP, reqid 3, ESP SPIs: c1_i c2_o, AES_GCM_16-256, 192.0.2.1/32[udp] === 192.0.2.2/32[udp/6081]",
	}
	if !reflect.DeepEqual(got.Details, wantDetails) {
		t.Errorf("Details =\n%q\nwant\n%q", got.Details, wantDetails)
	}
	if got.Phase != backend.PhaseUp || got.Code != backend.CodeNone {
		t.Errorf("phase %q code %q", got.Phase, got.Code)
	}
}
