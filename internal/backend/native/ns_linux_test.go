package native

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
	"github.com/ovnsec/ovnsec/internal/testenv"
	"github.com/ovnsec/ovnsec/test/netns"
)

// A north-south connection from a bridgeless backend to a DC gateway that
// is strongSwan with kernel-libipsec: the IKE SA and a UDP-encapsulated
// tunnel-mode Child SA come up, pings from the host's inner address reach
// the subnet behind the gateway both ways, and removing the connection
// deletes it at the gateway and routes the subnet normally again.
func TestIntegrationNorthSouthPSK(t *testing.T) {
	testenv.Short(t)
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "ip", "ping")
	host, dc := netns.Pair(t, "nsn", "198.51.100.1/24", "198.51.100.2/24")
	dc.MustExec("ip", "addr", "add", "203.0.113.1/32", "dev", "lo")
	const psk = "north-south test psk"
	gw := netns.NewDCGateway(t, dc, netns.DCConn{
		Name: "host", Local: dc.IP, Remote: host.IP, LocalID: dc.IP, RemoteID: host.IP,
		LocalTS: "203.0.113.0/24", RemoteTS: "192.0.2.100/32", PSK: psk,
	})

	local := netip.MustParseAddr(host.IP)
	b, err := New(context.Background(), Config{Local: local, Netns: "/run/netns/" + host.Name,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background(), true)

	subnet, inner := netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("192.0.2.100/32")
	gateway := netip.MustParseAddr(dc.IP)
	plan := NSPlan{Name: "dc", ID: "v1", Gateway: gateway, Remote: []netip.Prefix{subnet}, Addrs: []netip.Prefix{inner},
		Peer: ike.Peer{Local: local, Remote: gateway, Auth: ike.Auth{PSK: []byte(psk)}, Initiate: true,
			Children: []ike.ChildConfig{{Name: "dc", Mode: esp.Tunnel,
				LocalTS: []ike.TrafficSelector{ike.PrefixTS(inner, 0)}, RemoteTS: []ike.TrafficSelector{ike.PrefixTS(subnet, 0)}}}}}
	if errs := b.SetNorthSouth([]NSPlan{plan}); len(errs) > 0 {
		t.Fatal(errs)
	}
	sas := gw.WaitSA(t, "host", 15*time.Second)
	if !strings.Contains(sas, "TUNNEL-in-UDP") {
		t.Errorf("the gateway's Child SA is not UDP-encapsulated:\n%s", sas)
	}
	host.MustExec("ping", "-c", "3", "-i", "0.2", "-W", "2", "203.0.113.1")
	st := b.NSStatus()
	if len(st) != 1 || !st[0].Up || st[0].Out.PacketsOut < 3 || st[0].In.PacketsIn < 3 {
		t.Fatalf("status after pings: %+v", st)
	}

	// Unchanged: nothing renegotiated.
	spi := st[0].InSPI
	if errs := b.SetNorthSouth([]NSPlan{plan}); len(errs) > 0 {
		t.Fatal(errs)
	}
	if st := b.NSStatus(); st[0].InSPI != spi {
		t.Errorf("an unchanged connection was renegotiated: SPI %v -> %v", spi, st[0].InSPI)
	}

	// Removed: deleted at the gateway, the subnet no longer routed into
	// the device (nor blackholed).
	if errs := b.SetNorthSouth(nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := gw.Swanctl("--list-sas", "--ike", "host")
		if !strings.Contains(out, "ESTABLISHED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway still has the IKE SA after the connection was removed:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := host.MustExec("ip", "route", "show", "table", "20051"); strings.TrimSpace(out) != "" {
		t.Errorf("table 20051 after the last connection went:\n%s", out)
	}
}
