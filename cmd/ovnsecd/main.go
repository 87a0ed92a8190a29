// Command ovnsecd protects OVS/OVN tunnels with IPsec. It is a drop-in
// replacement for ovs-monitor-ipsec: it reads the same Open_vSwitch database
// contract and answers the same ovs-appctl commands.
//
//	ovnsecd [options] [DATABASE]
//
// DATABASE is an OVSDB remote (default unix:$OVS_RUNDIR/db.sock).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ovnsec/ovnsec/internal/datapath/ovsbridge"
	"github.com/ovnsec/ovnsec/internal/ovnsb"
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// config is the parsed command line.
type config struct {
	database      string
	rundir        string
	pidfile       string
	logFile       string
	logLevel      string
	ikeDaemon     string
	noRestart     bool
	compatName    bool
	viciSocket    string
	bridge        string
	nic           string
	enginePort    string
	localIP       string
	geneveOpts    int
	requireIPsec  bool
	followOVN     ovnsb.Mode
	ovnSB         string
	portKind      string
	direct        bool
	showVersion   bool
	ovsPidfileArg bool // --pidfile given without a value
}

const usageText = `usage: ovnsecd [options] [DATABASE]

ovnsecd watches the local Open_vSwitch database for tunnels with IPsec options
(psk, remote_cert, remote_name) and protects them. DATABASE is an OVSDB remote
such as unix:/var/run/openvswitch/db.sock (the default is $OVS_RUNDIR/db.sock).

options:
`

func parseArgs(args []string, stderr io.Writer) (config, error) {
	rundir := os.Getenv("OVS_RUNDIR")
	if rundir == "" {
		rundir = "/var/run/openvswitch"
	}
	var c config
	fs := flag.NewFlagSet("ovnsecd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.rundir, "rundir", rundir, "directory for the pidfile and the unixctl sockets")
	fs.StringVar(&c.pidfile, "pidfile", "", "write the process id to `FILE` (bare --pidfile: <rundir>/ovnsecd.pid)")
	fs.StringVar(&c.logFile, "log-file", "", "append logs to `FILE` instead of standard error (bare --log-file: /var/log/openvswitch/ovnsecd.log)")
	fs.StringVar(&c.logLevel, "log-level", "info", "minimum log level: debug, info, warn or error")
	fs.StringVar(&c.ikeDaemon, "ike-daemon", "native", "IPsec backend: native, strongswan or libreswan")
	fs.BoolVar(&c.noRestart, "no-restart-ike-daemon", false, "keep the IKE daemon's existing connections at start-up (hitless restart)")
	fs.BoolVar(&c.compatName, "compat-name", true, "also answer ovs-appctl -t ovs-monitor-ipsec (pidfile and ctl socket under that name)")
	fs.StringVar(&c.viciSocket, "vici-socket", "unix:///var/run/charon.vici", "strongSwan VICI socket (--ike-daemon=strongswan)")
	fs.StringVar(&c.bridge, "bridge", "", "native: the OVS netdev bridge that holds the underlay IP (br-phy)")
	fs.StringVar(&c.nic, "nic", "", "native: the bridge's underlay port (the NIC)")
	fs.StringVar(&c.enginePort, "engine-port", "ovnsec0", "native: name of the engine's port on the bridge")
	fs.StringVar(&c.portKind, "engine-port-type", "veth", "native: veth (a veth pair, frames read and written in batches) or tap (a TAP, one frame per system call)")
	fs.BoolVar(&c.direct, "direct-to-nic", true, "native: send outbound ESP straight onto the NIC instead of back through the bridge, when the NIC's port allows it (no VLAN tag, bond or userspace interface)")
	fs.StringVar(&c.localIP, "local-ip", "", "native: underlay IPv4 address (default: the bridge interface's first IPv4 address)")
	fs.IntVar(&c.geneveOpts, "geneve-options", 8, "native: Geneve option bytes counted in the overlay MTU (OVN uses 8)")
	fs.BoolVar(&c.requireIPsec, "require-ipsec", false, "native: drop the packets of every gre, geneve and vxlan tunnel that has no IPsec options yet, instead of letting them pass in plaintext (no plaintext window when OVN's ipsec=true reaches the chassis; with ipsec=false, tunnels carry nothing)")
	follow := fs.String("follow-ovn-ipsec", "auto", "follow OVN's SB_Global ipsec: while it is true, every gre, geneve and vxlan tunnel without IPsec options is INVALID and (native backend) its packets dropped, so the ipsec=true switch-over has no plaintext window; auto: when Open_vSwitch external_ids:ovn-remote (or --ovn-sb) is set; true; false")
	fs.StringVar(&c.ovnSB, "ovn-sb", "", "OVN Southbound `REMOTE` to read SB_Global ipsec from (tcp:HOST:PORT or unix:PATH, comma-separated for a cluster; default: Open_vSwitch external_ids:ovn-remote, as ovn-controller)")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")

	// OVS daemons accept --pidfile and --log-file without a value; Go's
	// flag package does not, so give the bare forms their OVS defaults.
	norm := make([]string, 0, len(args))
	for _, a := range args {
		switch a {
		case "--pidfile", "-pidfile":
			a = "--pidfile=ovnsecd.pid" // relative: joined with --rundir below
		case "--log-file", "-log-file":
			a = "--log-file=/var/log/openvswitch/ovnsecd.log"
		}
		norm = append(norm, a)
	}
	if err := fs.Parse(norm); err != nil {
		return c, err
	}
	mode, err := ovnsb.ParseMode(*follow)
	if err != nil {
		return c, err
	}
	c.followOVN = mode
	if c.ovnSB != "" {
		if err := ovnsb.CheckRemote(c.ovnSB, c.rundir); err != nil {
			return c, fmt.Errorf("--ovn-sb: %w", err)
		}
	}
	switch fs.NArg() {
	case 0:
		c.database = "unix:" + filepath.Join(c.rundir, "db.sock")
	case 1:
		c.database = fs.Arg(0)
	default:
		return c, fmt.Errorf("expected at most one DATABASE argument, got %q", fs.Args())
	}
	if c.pidfile != "" && !filepath.IsAbs(c.pidfile) {
		c.pidfile = filepath.Join(c.rundir, c.pidfile)
	}
	return c, nil
}

func newLogger(c config) (*slog.Logger, io.Closer, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	var w io.Writer = os.Stderr
	var closer io.Closer = io.NopCloser(nil)
	if c.logFile != "" {
		if err := os.MkdirAll(filepath.Dir(c.logFile), 0o755); err != nil {
			return nil, nil, fmt.Errorf("log file directory: %w", err)
		}
		f, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("open log file: %w", err)
		}
		w, closer = f, f
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), closer, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	c, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ovnsecd: %v\n", err)
		return 1
	}
	if c.showVersion {
		fmt.Fprintf(stderr, "ovnsecd %s\n", version)
		return 0
	}
	log, closer, err := newLogger(c)
	if err != nil {
		fmt.Fprintf(stderr, "ovnsecd: %v\n", err)
		return 1
	}
	defer closer.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	sys, err := newSystem(ctx, c, log)
	if err != nil {
		log.Error("ovnsecd cannot start", "err", err)
		fmt.Fprintf(stderr, "ovnsecd: %v\n", err)
		return 1
	}
	if err := sys.run(ctx); err != nil {
		log.Error("ovnsecd stopped", "err", err)
		return 1
	}
	return 0
}

// parsePortKind reads --engine-port-type.
func parsePortKind(s string) (ovsbridge.PortKind, error) {
	switch strings.ToLower(s) {
	case "veth", "":
		return ovsbridge.PortVeth, nil
	case "tap":
		return ovsbridge.PortTAP, nil
	}
	return 0, fmt.Errorf("--engine-port-type=%q: want veth or tap", s)
}

// errNotBuilt is the start-up refusal for a backend that does not exist yet.
func errNotBuilt(name string) error {
	return fmt.Errorf("--ike-daemon=%s is not available in this build of ovnsecd yet; use --ike-daemon=native or --ike-daemon=strongswan, see docs/STATUS.md", name)
}

func validateBackend(c config) error {
	switch strings.ToLower(c.ikeDaemon) {
	case "strongswan":
		if c.requireIPsec {
			return fmt.Errorf("--require-ipsec needs --ike-daemon=native: only the native backend can drop the packets of a tunnel that has no IPsec configuration")
		}
		return nil
	case "native":
		if c.bridge == "" || c.nic == "" {
			return fmt.Errorf("--ike-daemon=native needs --bridge=<br-phy> and --nic=<its underlay port>: ovnsecd attaches its engine to the OVS netdev bridge that holds the underlay IP")
		}
		if _, err := parsePortKind(c.portKind); err != nil {
			return err
		}
		return nil
	case "libreswan":
		return errNotBuilt(c.ikeDaemon)
	default:
		return fmt.Errorf("--ike-daemon=%q: the IKE daemon should be native, strongswan or libreswan", c.ikeDaemon)
	}
}
