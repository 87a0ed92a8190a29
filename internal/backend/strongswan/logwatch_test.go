package strongswan

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/ovnsec/ovnsec/internal/clock/clocktest"
)

func TestClassifyLog(t *testing.T) {
	tests := map[string]logKind{
		"received netlink error: Function not implemented (38)":                logKernel,
		"unable to add SAD entry with SPI cfbd3517 (FAILED)":                   logKernel,
		"unable to install inbound and outbound IPsec SA (SAD) in kernel":      logKernel,
		"unable to install policy 192.0.2.1/32[udp] === 192.0.2.2/32[udp]":     logKernel,
		"failed to establish CHILD_SA, keeping IKE_SA":                         logError,
		"received AUTHENTICATION_FAILED notify error":                          logError,
		"no shared key found for '192.0.2.1' - '192.0.2.2'":                    logError,
		"received NO_PROPOSAL_CHOSEN notify error":                             logError,
		"giving up after 5 retransmits":                                        logError,
		"tried 1 shared key for '192.0.2.1' - '192.0.2.2', but MAC mismatched": logError,
		"sending DPD request":                                                  logIgnore,
		"IKE_SA gnv0-1[2] established between 192.0.2.1[192.0.2.1]":            logIgnore,
		"": logIgnore,
	}
	for in, want := range tests {
		if got := classifyLog(in); got != want {
			t.Errorf("classifyLog(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestLogBook(t *testing.T) {
	clk := clocktest.New(t0)
	lb := newLogBook(clk)
	add := func(id, conn, m string) {
		if err := lb.add(msg(t, "group", "IKE", "level", "1", "ikesa-uniqueid", id, "ikesa-name", conn, "msg", m)); err != nil {
			t.Fatal(err)
		}
	}
	add("1", "gnv0-1", "received netlink error: Function not implemented (38)")
	add("1", "gnv0-1", "received netlink error: Function not implemented (38)") // duplicate
	add("1", "gnv0-1", "sending DPD request")                                   // ignored
	add("1", "gnv0-1", "failed to establish CHILD_SA, keeping IKE_SA")
	for _, ev := range []*vici.Message{
		msg(t, "group", "ENC", "ikesa-uniqueid", "1", "msg", "parsed IKE_AUTH response 1 [ N(AUTH_FAILED) ]"), // dump, ignored
		msg(t, "ikesa-uniqued", "2", "msg", "unable to add SAD entry with SPI 1 (FAILED)"),                    // README spelling
	} {
		if err := lb.add(ev); err != nil {
			t.Fatal(err)
		}
	}
	sa, conn, streaming := lb.lookup("1", "gnv0-1")
	if streaming {
		t.Error("streaming before setStreaming")
	}
	if len(sa.Kernel) != 1 || len(sa.Errors) != 1 || len(conn.Kernel) != 1 {
		t.Errorf("sa %+v conn %+v", sa, conn)
	}
	if sa2, _, _ := lb.lookup("2", ""); len(sa2.Kernel) != 1 {
		t.Errorf("README spelling of ikesa-uniqueid not read: %+v", sa2)
	}
	if none, _, _ := lb.lookup("", "gnv0-1"); len(none.Kernel) != 0 {
		t.Errorf("empty SA id matched: %+v", none)
	}
	// Returned notes are copies.
	sa.Kernel[0] = "changed"
	if again, _, _ := lb.lookup("1", ""); again.Kernel[0] == "changed" {
		t.Error("lookup returned shared slices")
	}
	lb.forgetConn("gnv0-1")
	if _, c, _ := lb.lookup("", "gnv0-1"); len(c.Kernel)+len(c.Errors) != 0 {
		t.Errorf("forgetConn left %+v", c)
	}
	// Lines per note and notes are bounded.
	for i := 0; i < 10; i++ {
		add("3", "", fmt.Sprintf("unable to add SAD entry with SPI %d (FAILED)", i))
	}
	if n, _, _ := lb.lookup("3", ""); len(n.Kernel) != maxLines || n.Kernel[maxLines-1] != "unable to add SAD entry with SPI 9 (FAILED)" {
		t.Errorf("note not bounded to the last %d lines: %q", maxLines, n.Kernel)
	}
	for i := 0; i < maxNotes+50; i++ {
		clk.Advance(time.Millisecond)
		add(fmt.Sprint(100+i), "", "giving up")
	}
	lb.mu.Lock()
	n := len(lb.bySA)
	lb.mu.Unlock()
	if n > maxNotes {
		t.Errorf("%d notes kept, max %d", n, maxNotes)
	}
}

// A log event of the wrong shape is an error and records nothing.
func TestLogBookBadEvent(t *testing.T) {
	lb := newLogBook(clocktest.New(t0))
	for _, ev := range []*vici.Message{
		msg(t, "ikesa-uniqueid", "1", "msg", []string{"received netlink error: Function not implemented (38)"}),
		msg(t, "ikesa-uniqueid", msg(t), "msg", "received netlink error: Function not implemented (38)"),
	} {
		if err := lb.add(ev); err == nil || !strings.Contains(err.Error(), "decode charon's log event") {
			t.Errorf("add(%s) = %v, want a decode error", ev, err)
		}
	}
	if sa, _, _ := lb.lookup("1", ""); len(sa.Kernel)+len(sa.Errors) != 0 {
		t.Errorf("bad event recorded: %+v", sa)
	}
	if err := lb.add(nil); err != nil {
		t.Errorf("add(nil) = %v", err)
	}
}

func TestAuthLine(t *testing.T) {
	for msg, want := range map[string]bool{
		"received AUTHENTICATION_FAILED notify error":                          true,
		"tried 1 shared key for '192.0.2.1' - '192.0.2.2', but MAC mismatched": true,
		"no shared key found for '192.0.2.1' - '192.0.2.2'":                    true,
		"no trusted RSA public key found for 'sswt-b'":                         true,
		"no private key found for 'sswt-a'":                                    true,
		"signature validation failed, looking for another key":                 true,
		"constraint check failed: identity 'x' required":                       true,
		"giving up after 5 retransmits":                                        false,
		"received NO_PROPOSAL_CHOSEN notify error":                             false,
		"received netlink error: Function not implemented (38)":                false,
		"authentication of 'sswt-b' with RSA signature successful":             false,
	} {
		if got := authLine(msg); got != want {
			t.Errorf("authLine(%q) = %v, want %v", msg, got, want)
		}
		if want && classifyLog(msg) == logIgnore {
			t.Errorf("%q is an authentication failure the log book does not keep", msg)
		}
	}
}
