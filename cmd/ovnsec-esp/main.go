// Command ovnsec-esp runs one tunnel-mode ESP attachment (TUN device,
// routes, ESP-in-UDP on port 4500) with static keys read from a key file
// (or stdin), until SIGTERM or SIGINT. It is for tests and benchmarks only.
//
// FOR TESTS AND BENCHMARKS ONLY. There is no IKE, no rekey and no
// lifetime: the same keys protect traffic until the process ends. The flag
// --static-keys-for-testing must be given to acknowledge this. Production
// SAs come only from the IKE engine (ovnsecd). Keys are never taken from
// the command line, where every local user could read them (ps,
// /proc/<pid>/cmdline): --key-out and --key-in are refused.
//
// Example (two namespaces over a veth, see bench/tun.sh):
//
//	(umask 077; printf 'key-out %s\nkey-in %s\n' "$KEY_AB" "$KEY_BA" >a.keys)
//	ip netns exec tunt-a ovnsec-esp --static-keys-for-testing \
//	    --local 192.0.2.1 --remote 192.0.2.2 \
//	    --addr 203.0.113.1/32 --remote-net 203.0.113.2/32 \
//	    --spi-out 0x1001 --spi-in 0x2002 --key-file a.keys
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ovnsec/ovnsec/internal/datapath/tun"
	"github.com/ovnsec/ovnsec/internal/esp"
)

// options is the parsed command line.
type options struct {
	sys       tun.System
	remote    netip.Addr
	remoteNet []netip.Prefix
	port      uint16
	spiOut    esp.SPI
	spiIn     esp.SPI
	keyOut    esp.Key
	keyIn     esp.Key
	stats     time.Duration
	verbose   bool
}

const warning = "ovnsec-esp: STATIC KEYS FOR TESTS AND BENCHMARKS ONLY: no IKE, no rekey, no lifetime"

// parseOptions parses the command line and reads the key file (stdin when
// it is "-"); warnings go to errOut.
func parseOptions(args []string, stdin io.Reader, errOut io.Writer) (*options, error) {
	fs := flag.NewFlagSet("ovnsec-esp", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {
		fmt.Fprintf(errOut, "usage: ovnsec-esp --static-keys-for-testing [flags]\n%s\n\n", warning)
		fs.PrintDefaults()
	}
	var (
		ack       = fs.Bool("static-keys-for-testing", false, "required: acknowledge that static keys (no IKE, no rekey) are for tests/benchmarks only")
		netns     = fs.String("netns", "", "network namespace (name or path) to create the device and socket in; default: current")
		dev       = fs.String("dev", "ovnsec0", "TUN device name")
		local     = fs.String("local", "", "local underlay IPv4 address (required)")
		remote    = fs.String("remote", "", "remote underlay IPv4 address (required)")
		port      = fs.Uint("port", esp.NATTPort, "UDP port on both ends (ESP-in-UDP, RFC 3948)")
		addr      = fs.String("addr", "", "inner address of the TUN device, e.g. 203.0.113.1/32 (required)")
		remoteNet = fs.String("remote-net", "", "comma-separated inner subnets behind the remote end (required)")
		spiOut    = fs.String("spi-out", "", "SPI of the outbound SA (the remote end's --spi-in)")
		spiIn     = fs.String("spi-in", "", "SPI of the inbound SA (the remote end's --spi-out)")
		keyFile   = fs.String("key-file", "", "file with the lines \"key-out HEX\" and \"key-in HEX\" (AES-GCM key+salt, 40 or 72 hex digits), mode 0600; \"-\": read them from stdin (required)")
		_         = fs.String("key-out", "", "refused: keys on the command line are visible to every local user; use --key-file")
		_         = fs.String("key-in", "", "refused: keys on the command line are visible to every local user; use --key-file")
		underMTU  = fs.Int("underlay-mtu", 1500, "underlay link MTU")
		mtu       = fs.Int("mtu", 0, "TUN MTU; 0: the largest that fits the underlay")
		stats     = fs.Duration("stats", 0, "log counters at this interval (0: only at exit)")
		verbose   = fs.Bool("v", false, "debug logging")
		noGSO     = fs.Bool("no-gso", false, "do not send with UDP GSO (for comparison)")
		noGRO     = fs.Bool("no-gro", false, "do not receive with UDP GRO (for comparison)")
	)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var inArgv []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "key-out" || f.Name == "key-in" {
			inArgv = append(inArgv, "--"+f.Name)
		}
	})
	if len(inArgv) > 0 {
		return nil, fmt.Errorf("%s: keys on the command line are visible to every local user (/proc/PID/cmdline, ps) and in shell history; write the lines \"key-out HEX\" and \"key-in HEX\" to a file only you can read (chmod 600) and pass --key-file FILE, or pass --key-file - and give them on stdin", strings.Join(inArgv, ", "))
	}
	if !*ack {
		return nil, errors.New("refusing to run: static keys (no IKE, no rekey) are for tests and benchmarks only; pass --static-keys-for-testing to acknowledge")
	}
	if *keyFile == "" {
		return nil, errors.New("--key-file is required: a file with the lines \"key-out HEX\" and \"key-in HEX\" (mode 0600), or - to read them from stdin")
	}
	o := &options{stats: *stats, verbose: *verbose}
	var err error
	la, err := netip.ParseAddr(*local)
	if err != nil || !la.Is4() {
		return nil, fmt.Errorf("--local %q: want an IPv4 address", *local)
	}
	if o.remote, err = netip.ParseAddr(*remote); err != nil || !o.remote.Is4() {
		return nil, fmt.Errorf("--remote %q: want an IPv4 address", *remote)
	}
	if *port == 0 || *port > 65535 {
		return nil, fmt.Errorf("--port %d: want 1-65535", *port)
	}
	o.port = uint16(*port)
	pfx, err := netip.ParsePrefix(*addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %q: want an address with prefix length, e.g. 203.0.113.1/32", *addr)
	}
	for s := range strings.SplitSeq(*remoteNet, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("--remote-net %q: %v", *remoteNet, err)
		}
		o.remoteNet = append(o.remoteNet, p)
	}
	if o.spiOut, err = parseSPI("--spi-out", *spiOut); err != nil {
		return nil, err
	}
	if o.spiIn, err = parseSPI("--spi-in", *spiIn); err != nil {
		return nil, err
	}
	if o.keyOut, o.keyIn, err = readKeyFile(*keyFile, stdin, errOut); err != nil {
		return nil, err
	}
	o.sys = tun.System{
		NetNS:       *netns,
		Name:        *dev,
		Addr:        pfx,
		Local:       netip.AddrPortFrom(la, o.port),
		UnderlayMTU: *underMTU,
		MTU:         *mtu,
		NoGSO:       *noGSO,
		NoGRO:       *noGRO,
	}
	return o, nil
}

func parseSPI(flag, s string) (esp.SPI, error) {
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil || v < 256 {
		return 0, fmt.Errorf("%s %q: want a number from 256 to 2^32-1 (0-255 are reserved), e.g. 0x1001", flag, s)
	}
	return esp.SPI(v), nil
}

func main() {
	o, err := parseOptions(os.Args[1:], os.Stdin, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ovnsec-esp:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ovnsec-esp:", err)
		os.Exit(1)
	}
}

// run builds the attachment, installs the static SAs and runs until ctx
// ends; the final counters go to out as one JSON line.
func run(ctx context.Context, o *options, out io.Writer) error {
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	log.Warn(warning)

	encap := esp.Encap{Type: esp.EncapUDP, SrcPort: o.port, DstPort: o.port}
	in, err := esp.NewSA(esp.Config{SPI: o.spiIn, Dir: esp.Inbound, Mode: esp.Tunnel, Encap: encap, Key: o.keyIn})
	if err != nil {
		return err
	}
	outSA, err := esp.NewSA(esp.Config{SPI: o.spiOut, Dir: esp.Outbound, Mode: esp.Tunnel, Encap: encap, Key: o.keyOut})
	if err != nil {
		return err
	}
	o.keyIn.Zero()
	o.keyOut.Zero()

	a, err := tun.Open(o.sys, tun.Config{
		Table:  esp.NewTable(nil),
		Peers:  []tun.Peer{{Addr: o.remote, Remote: o.remoteNet}},
		Logger: log,
	})
	if err != nil {
		return err
	}
	if err := a.Install(o.remote, in, outSA); err != nil {
		a.Close()
		return err
	}
	log.Info("ovnsec-esp: running", "dev", o.sys.Name, "local", o.sys.Local, "remote", o.remote,
		"remote-net", o.remoteNet, "spi-out", o.spiOut, "spi-in", o.spiIn)
	if o.stats > 0 {
		go func() {
			t := time.NewTicker(o.stats)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					log.Info("ovnsec-esp: stats", "stats", a.Stats())
				}
			}
		}()
	}
	err = a.Run(ctx)
	if b, jerr := json.Marshal(report(a.Stats())); jerr == nil {
		fmt.Fprintf(out, "%s\n", b)
	}
	return err
}

// statsReport is the exit line: counters with drops by reason name.
type statsReport struct {
	TxPackets, TxBytes, TxBatches uint64
	RxPackets, RxBytes, RxBatches uint64
	IKE, Keepalives, Held         uint64
	TxDrops, RxDrops              map[string]uint64
}

func report(s tun.Stats) statsReport {
	r := statsReport{
		TxPackets: s.TxPackets, TxBytes: s.TxBytes, TxBatches: s.TxBatches,
		RxPackets: s.RxPackets, RxBytes: s.RxBytes, RxBatches: s.RxBatches,
		IKE: s.IKE, Keepalives: s.Keepalives, Held: s.Held,
		TxDrops: map[string]uint64{}, RxDrops: map[string]uint64{},
	}
	for i := range s.TxDrops {
		if n := s.TxDrops[i]; n != 0 {
			r.TxDrops[tun.Reason(i).String()] = n
		}
		if n := s.RxDrops[i]; n != 0 {
			r.RxDrops[tun.Reason(i).String()] = n
		}
	}
	return r
}
