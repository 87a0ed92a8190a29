package ovsconf

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// Automatic certificates read system-id and the PKI keys, and set the
// PKI keys in one transaction without touching the other keys, against
// the real ovsdb-server; ovs-vsctl sees the result.
func TestPKIReadAndSet(t *testing.T) {
	testenv.Short(t)
	db := testenv.StartOVSDB(t)
	db.Vsctl("--no-wait", "set", "Open_vSwitch", ".", "external_ids:system-id=ch1", "other_config:certificate=/old/cert.pem",
		"other_config:ipsec_skb_mark=0/1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	row, err := ReadOpenvSwitch(ctx, db.Remote, nil)
	if err != nil {
		t.Fatal(err)
	}
	if row.ExternalIDs["system-id"] != "ch1" || row.OtherConfig["certificate"] != "/old/cert.pem" {
		t.Fatalf("read %+v", row)
	}
	kv := map[string]string{"certificate": "/e/chassis-cert.pem", "private_key": "/e/chassis-privkey.pem", "ca_cert": "/e/cacert.pem"}
	if err := SetOtherConfig(ctx, db.Remote, kv, nil); err != nil {
		t.Fatal(err)
	}
	out := db.Vsctl("get", "Open_vSwitch", ".", "other_config")
	for _, want := range []string{`certificate="/e/chassis-cert.pem"`, `private_key="/e/chassis-privkey.pem"`, `ca_cert="/e/cacert.pem"`, `ipsec_skb_mark="0/1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("other_config %s lacks %s", out, want)
		}
	}
	if strings.Contains(out, "/old/") {
		t.Errorf("the old value stayed: %s", out)
	}
	// Again with the same values: nothing changes, no error.
	if err := SetOtherConfig(ctx, db.Remote, kv, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadOpenvSwitch(ctx, "unix:/nonexistent/db.sock", nil); err == nil {
		t.Error("a missing database was read")
	}
}
