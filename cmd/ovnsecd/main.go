// Command ovnsecd protects OVS/OVN tunnels with IPsec. It is a drop-in
// replacement for ovs-monitor-ipsec: it reads the same Open_vSwitch database
// contract and answers the same ovs-appctl commands.
//
//	ovnsecd [options] [DATABASE] [options]
//
// DATABASE is an OVSDB remote (default unix:$OVS_RUNDIR/db.sock). Options
// may come before and after it, as with ovs-monitor-ipsec's argparse.
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

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/backend/native"
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
	metricsAddr   string
	showVersion   bool
	libreswan     libreswanConfig
	ovsPidfileArg bool // --pidfile given without a value
	// given holds the flags named on the command line, with the value
	// each ended with (backend-specific flags are checked against it).
	given map[string]flagValue

	// --enroll and its flags (automatic certificates, enroll.go).
	enroll, enrollTokenFile, enrollCACert, enrollCAFingerprint, enrollDir string
}

// flagValue is a flag as the command line left it.
type flagValue struct {
	value, def string
}

const usageText = `usage: ovnsecd [options] [DATABASE] [options]

ovnsecd watches the local Open_vSwitch database for tunnels with IPsec options
(psk, remote_cert, remote_name) and protects them. DATABASE is an OVSDB remote
such as unix:/var/run/openvswitch/db.sock (the default is $OVS_RUNDIR/db.sock).
Options may come before and after DATABASE; "--" ends the options.

Options marked "only with --ike-daemon=X" are ignored, with a warning, under
another backend; those also marked "refused with another backend" make
ovnsecd refuse to start there when they ask for something.

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
	fs.StringVar(&c.ikeDaemon, "ike-daemon", "native", "IPsec backend: "+backendNames())
	fs.BoolVar(&c.noRestart, "no-restart-ike-daemon", false, "keep the IKE daemon's existing connections at start-up (hitless restart)")
	fs.BoolVar(&c.compatName, "compat-name", true, "also answer ovs-appctl -t ovs-monitor-ipsec (pidfile and ctl socket under that name)")
	fs.StringVar(&c.viciSocket, "vici-socket", "unix:///var/run/charon.vici", "strongSwan's VICI socket")
	fs.StringVar(&c.bridge, "bridge", "", "the OVS netdev bridge that holds the underlay IP (br-phy)")
	fs.StringVar(&c.nic, "nic", "", "the bridge's underlay port (the NIC)")
	fs.StringVar(&c.enginePort, "engine-port", "ovnsec0", "name of the engine's port on the bridge")
	fs.StringVar(&c.portKind, "engine-port-type", "veth", "veth (a veth pair, frames read and written in batches) or tap (a TAP, one frame per system call)")
	fs.BoolVar(&c.direct, "direct-to-nic", true, "send outbound ESP straight onto the NIC instead of back through the bridge, when the NIC's port allows it (no VLAN tag, bond or userspace interface)")
	fs.StringVar(&c.localIP, "local-ip", "", "underlay IPv4 address (default: the bridge interface's first IPv4 address)")
	fs.IntVar(&c.geneveOpts, "geneve-options", 8, "Geneve option bytes counted in the overlay MTU (OVN uses 8)")
	fs.BoolVar(&c.requireIPsec, "require-ipsec", false, "drop the packets of every gre, geneve and vxlan tunnel that has no IPsec options yet, instead of letting them pass in plaintext (no plaintext window when OVN's ipsec=true reaches the chassis; with ipsec=false, tunnels carry nothing)")
	follow := fs.String("follow-ovn-ipsec", "auto", "follow OVN's SB_Global ipsec: while it is true, every gre, geneve and vxlan tunnel without IPsec options is INVALID and (native backend) its packets dropped, so the ipsec=true switch-over has no plaintext window; auto: when Open_vSwitch external_ids:ovn-remote (or --ovn-sb) is set; true; false")
	fs.StringVar(&c.ovnSB, "ovn-sb", "", "OVN Southbound `REMOTE` to read SB_Global ipsec from (tcp:HOST:PORT or unix:PATH, comma-separated for a cluster; default: Open_vSwitch external_ids:ovn-remote, as ovn-controller)")
	fs.StringVar(&c.metricsAddr, "metrics-address", "", "serve Prometheus metrics at http://`HOST:PORT`/metrics (off by default; :PORT listens on every address)")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	libreswanFlags(fs, &c.libreswan)
	fs.StringVar(&c.enroll, "enroll", "", "keep this chassis' certificate from the EST CA service at `https://HOST:PORT` (ovnsec ca serve): enrol when other_config:certificate is missing, expired, for another name or not from that CA, renew it, follow CA rollovers (docs/PKI.md)")
	fs.StringVar(&c.enrollTokenFile, "enroll-token-file", "", "with --enroll: the bootstrap token for enrolling (`FILE`, mode 0600; ovnsec ca token create prints one)")
	fs.StringVar(&c.enrollCACert, "enroll-ca-cert", "", "with --enroll: trust the CA certificate in `FILE` for the first contact with the CA service")
	fs.StringVar(&c.enrollCAFingerprint, "enroll-ca-fingerprint", "", "with --enroll: trust the CA certificate whose DER has this SHA-256 (`HEX`) for the first contact")
	fs.StringVar(&c.enrollDir, "enroll-dir", defaultEnrollDir, "with --enroll: `DIR` (mode 0700) for the chassis certificate, its key and the CA bundle")

	markBackendFlags(fs)

	opts, pos := splitArgs(fs, args)
	if err := fs.Parse(opts); err != nil {
		return c, err
	}
	c.given = map[string]flagValue{}
	fs.Visit(func(f *flag.Flag) { c.given[f.Name] = flagValue{value: f.Value.String(), def: f.DefValue} })
	mode, err := ovnsb.ParseMode(*follow)
	if err != nil {
		return c, err
	}
	c.followOVN = mode
	if err := checkEnroll(c); err != nil {
		return c, err
	}
	if c.metricsAddr != "" {
		if err := checkMetricsAddress(c.metricsAddr); err != nil {
			return c, err
		}
	}
	if c.ovnSB != "" {
		if err := ovnsb.CheckRemote(c.ovnSB, c.rundir); err != nil {
			return c, fmt.Errorf("--ovn-sb: %w", err)
		}
	}
	switch len(pos) {
	case 0:
		c.database = "unix:" + filepath.Join(c.rundir, "db.sock")
	case 1:
		c.database = pos[0]
	default:
		return c, fmt.Errorf("expected at most one DATABASE argument, got %s", quotedList(pos))
	}
	if c.pidfile != "" && !filepath.IsAbs(c.pidfile) {
		c.pidfile = filepath.Join(c.rundir, c.pidfile)
	}
	return c, nil
}

// splitArgs separates options (with their values) from positional
// arguments, which may come in any order, as Python's argparse does for
// ovs-monitor-ipsec: "ovnsecd unix:/run/openvswitch/db.sock --ike-daemon=native"
// is "ovnsecd --ike-daemon=native unix:/run/openvswitch/db.sock". "--" ends
// the options (everything after it is positional) and "-" alone is
// positional. An option that takes a value and has no "=" takes the next
// argument, whatever it looks like, as Go's flag package does. Unknown
// options stay with the options so that fs.Parse reports them.
//
// The bare --pidfile and --log-file (a value is optional for OVS daemons,
// not for Go's flag package) get their OVS defaults here and never take
// the next argument: "--pidfile unix:/db.sock" is a pidfile and a
// database, where argparse would take the database for the pidfile.
func splitArgs(fs *flag.FlagSet, args []string) (opts, pos []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return opts, append(pos, args[i+1:]...)
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		switch a {
		case "--pidfile", "-pidfile":
			a = "--pidfile=ovnsecd.pid" // relative: joined with --rundir
		case "--log-file", "-log-file":
			a = "--log-file=/var/log/openvswitch/ovnsecd.log"
		}
		opts = append(opts, a)
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			opts = append(opts, args[i])
		}
	}
	return opts, pos
}

// quotedList is "a" and "b", or "a", "b" and "c".
func quotedList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
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
	// SIGHUP asks for an upgrade; taken from the start so that it never
	// kills a process still starting.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	up, err := newUpgrades(log)
	if err != nil {
		log.Warn("ovnsecd starts without hitless upgrade", "err", err)
	}
	if up.child() {
		log.Info("upgrade: started by the old ovnsecd", "ppid", os.Getppid())
	}
	ms, err := listenMetrics(c, log, up)
	if err != nil {
		log.Error("ovnsecd cannot start", "err", err)
		fmt.Fprintf(stderr, "ovnsecd: %v\n", err)
		return 1
	}
	defer ms.Close()
	sys, err := newSystem(ctx, c, log, up)
	if err != nil {
		log.Error("ovnsecd cannot start", "err", err)
		fmt.Fprintf(stderr, "ovnsecd: %v\n", err)
		return 1
	}
	sys.hup = hup
	if up.child() {
		if err := sys.takeOver(ctx); err != nil {
			log.Error("ovnsecd cannot start", "err", err)
			fmt.Fprintf(stderr, "ovnsecd: %v\n", err)
			return 1
		}
	}
	up.ready()
	notify(log, "READY=1")
	if err := ms.serve(ctx, sys); err != nil {
		log.Error("ovnsecd cannot serve metrics", "err", err)
		fmt.Fprintf(stderr, "ovnsecd: %v\n", err)
		sys.closeControl()
		return 1
	}
	if err := sys.run(ctx); err != nil {
		log.Error("ovnsecd stopped", "err", err)
		return 1
	}
	return 0
}

// backendSpec is one --ike-daemon value: the flags that apply to it alone,
// how its configuration is checked and how it is built. Everything that
// depends on --ike-daemon (--help, validation, the refusals and warnings
// for another backend's flags, construction) reads the backends table.
type backendSpec struct {
	name string
	// refused, when set, is why this build refuses the value: upstream's
	// ovs-monitor-ipsec accepts it, ovnsecd does not provide it (yet).
	refused string
	// flags apply to this backend alone.
	flags []backendFlag
	// validate checks the configuration before anything starts.
	validate func(config) error
	// build starts the backend with the daemon's shared parts.
	build func(context.Context, config, shared, *slog.Logger) (backend.Backend, error)
}

// backendFlag is a flag that applies to one backend. Given with another
// backend it is ignored with a warning; when refuse is set and its value
// is not the default (it asks for something that backend cannot do), it
// is refused with that reason instead.
type backendFlag struct {
	name   string
	refuse string
}

// backends are the --ike-daemon values, in the order --help lists them.
// The table is never modified.
var backends = []backendSpec{
	{
		name: "native",
		flags: []backendFlag{
			{name: "bridge"}, {name: "nic"}, {name: "engine-port"}, {name: "engine-port-type"},
			{name: "direct-to-nic"}, {name: "local-ip"}, {name: "geneve-options"},
			{name: "require-ipsec", refuse: "only the native backend can drop the packets of a tunnel that has no IPsec configuration"},
		},
		validate: validateNative,
		build:    newNativeBackend,
	},
	{
		name:     "strongswan",
		flags:    []backendFlag{{name: "vici-socket"}},
		validate: func(config) error { return nil },
		build:    newStrongswanBackend,
	},
	{
		name:     "libreswan",
		flags:    libreswanFlagNames,
		validate: validateLibreswan,
		build:    newLibreswanBackend,
	},
}

// backendNames lists every --ike-daemon value: "native, strongswan or
// libreswan".
func backendNames() string {
	names := make([]string, len(backends))
	for i, b := range backends {
		names[i] = b.name
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// markBackendFlags prefixes the usage of every backend-specific flag with
// the backend it applies to, and the usage of --ike-daemon with the values
// this build refuses.
func markBackendFlags(fs *flag.FlagSet) {
	for _, b := range backends {
		if b.refused != "" {
			if f := fs.Lookup("ike-daemon"); f != nil {
				f.Usage += fmt.Sprintf(" (%s: %s)", b.name, b.refused)
			}
		}
		for _, bf := range b.flags {
			if f := fs.Lookup(bf.name); f != nil {
				mark := "only with --ike-daemon=" + b.name
				if bf.refuse != "" {
					mark += " (refused with another backend)"
				}
				f.Usage = mark + ": " + f.Usage
			}
		}
	}
}

// lookupBackend finds the --ike-daemon value name (in any case) and
// refuses the values this build does not provide.
func lookupBackend(name string) (*backendSpec, error) {
	for i := range backends {
		b := &backends[i]
		if !strings.EqualFold(name, b.name) {
			continue
		}
		if b.refused != "" {
			var built []string
			for _, o := range backends {
				if o.refused == "" {
					built = append(built, "--ike-daemon="+o.name)
				}
			}
			return nil, fmt.Errorf("--ike-daemon=%s is %s; use %s, see docs/STATUS.md", name, b.refused, strings.Join(built, " or "))
		}
		return b, nil
	}
	return nil, fmt.Errorf("--ike-daemon=%q: the IKE daemon should be %s", name, backendNames())
}

// selectBackend finds the backend c asks for and checks c against it:
// another backend's flags are refused or, returned as warnings, ignored.
func selectBackend(c config) (*backendSpec, []string, error) {
	spec, err := lookupBackend(c.ikeDaemon)
	if err != nil {
		return nil, nil, err
	}
	var warnings []string
	for _, other := range backends {
		if other.name == spec.name {
			continue
		}
		for _, f := range other.flags {
			v, ok := c.given[f.name]
			if !ok {
				continue
			}
			if f.refuse != "" && v.value != v.def {
				return nil, nil, fmt.Errorf("--%s needs --ike-daemon=%s: %s", f.name, other.name, f.refuse)
			}
			warnings = append(warnings, fmt.Sprintf("--%s applies only to --ike-daemon=%s; ignored with --ike-daemon=%s", f.name, other.name, spec.name))
		}
	}
	if err := spec.validate(c); err != nil {
		return nil, nil, err
	}
	return spec, warnings, nil
}

// validateNative checks the native backend's flags.
func validateNative(c config) error {
	if c.bridge == "" || c.nic == "" {
		return fmt.Errorf("--ike-daemon=native needs --bridge=<br-phy> and --nic=<its underlay port>: ovnsecd attaches its engine to the OVS netdev bridge that holds the underlay IP")
	}
	if _, err := native.ParsePortKind(c.portKind); err != nil {
		return fmt.Errorf("--engine-port-type: %w", err)
	}
	if c.localIP != "" {
		if _, err := parseLocalIP(c.localIP); err != nil {
			return err
		}
	}
	return nil
}
