// Command ikeload measures IKEv2 handshake rates (bench/ike.sh, row 3 of
// the bench). "ikeload run" is the load generator: K ovnsec IKE engines on
// K consecutive local addresses run full PSK handshakes (IKE_SA_INIT +
// IKE_AUTH with one tunnel-mode Child SA, ESP-in-UDP) against a responder
// for a warmup and a measured window, delete each IKE SA before the next,
// and print one JSON object: handshakes/s, failures, latency p50/p99 and
// the CPU time of the generator and of the responder process over the
// window. "ikeload respond" is ovnsec's responder for it.
//
//	ikeload respond -local 198.51.100.126 -peers 198.51.100.1 -n 16 -psk s
//	ikeload run -local 198.51.100.1 -n 16 -remote 198.51.100.126 -psk s \
//	    -seconds 10 -responder-pid 1234
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ikeload:", err)
		stop()
		os.Exit(1)
	}
}

const usage = "usage: ikeload run|respond [flags] (ikeload run -h for the flags)"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "run":
		c, asJSON, prof, err := parseRun(args[1:], stderr)
		if err != nil {
			return err
		}
		if prof != "" {
			stop, err := startCPUProfile(prof)
			if err != nil {
				return err
			}
			defer stop()
		}
		r, err := runLoad(ctx, c)
		if err != nil {
			return err
		}
		return printResult(stdout, r, asJSON)
	case "respond":
		c, logFile, err := parseRespond(args[1:], stderr)
		if err != nil {
			return err
		}
		if logFile != nil {
			defer logFile.Close()
		}
		if c.CPUProfile != "" {
			stop, err := startCPUProfile(c.CPUProfile)
			if err != nil {
				return err
			}
			defer stop()
		}
		if c.MemProfile != "" {
			defer writeHeapProfile(c.MemProfile, stderr)
		}
		return serve(ctx, c, stdout)
	}
	return fmt.Errorf("unknown command %q; %s", args[0], usage)
}

// startCPUProfile writes a Go CPU profile to path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// common flags of both commands.
type commonFlags struct {
	local, psk, ikeProp, espProp, level, logFile string
	n, portIKE, portNATT                         int
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.local, "local", "", "local address (run: the first of -n consecutive addresses)")
	fs.IntVar(&c.n, "n", 16, "number of generator identities (addresses), i.e. concurrent handshakes")
	fs.StringVar(&c.psk, "psk", "", "pre-shared key (or env IKELOAD_PSK)")
	fs.StringVar(&c.ikeProp, "ike-proposal", "aes256gcm16-prfsha256-x25519", "IKE proposal (strongSwan notation)")
	fs.StringVar(&c.espProp, "esp-proposal", "aes256gcm16", "ESP proposal (strongSwan notation)")
	fs.IntVar(&c.portIKE, "port-ike", 500, "local IKE port (-1: any)")
	fs.IntVar(&c.portNATT, "port-natt", 4500, "local NAT-T port (-1: any)")
	fs.StringVar(&c.level, "log-level", "warn", "engine log level: debug, info, warn, error")
	fs.StringVar(&c.logFile, "log-file", "", "engine log file (default stderr)")
}

func (c *commonFlags) pskBytes() ([]byte, error) {
	if c.psk == "" {
		c.psk = os.Getenv("IKELOAD_PSK")
	}
	if c.psk == "" {
		return nil, fmt.Errorf("no pre-shared key: set -psk or IKELOAD_PSK")
	}
	return []byte(c.psk), nil
}

// logger opens the log destination; the file, if any, is returned to be
// closed by the caller.
func (c *commonFlags) logger(stderr io.Writer) (*slog.Logger, *os.File, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.level)); err != nil {
		return nil, nil, fmt.Errorf("-log-level %q: %v (use debug, info, warn or error)", c.level, err)
	}
	w, f := stderr, (*os.File)(nil)
	if c.logFile != "" {
		var err error
		if f, err = os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, nil, fmt.Errorf("open log file: %w", err)
		}
		w = f
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})), f, nil
}

func parseAddr(flagName, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, fmt.Errorf("-%s is required", flagName)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("-%s: %v", flagName, err)
	}
	return a, nil
}

func parseRun(args []string, stderr io.Writer) (c loadConfig, asJSON bool, cpuProfile string, err error) {
	var cf commonFlags
	var remote string
	var remoteIKE, remoteNATT, pid int
	var seconds, warmup, timeout time.Duration
	var progress bool
	fs := flag.NewFlagSet("ikeload run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf.register(fs)
	fs.StringVar(&remote, "remote", "", "responder address")
	fs.IntVar(&remoteIKE, "remote-port", 500, "responder IKE port")
	fs.IntVar(&remoteNATT, "remote-natt", 4500, "responder NAT-T port")
	fs.DurationVar(&seconds, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&warmup, "warmup", time.Second, "load before the measured window (not counted)")
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "a handshake not done after this counts as failed")
	fs.IntVar(&pid, "responder-pid", 0, "responder process whose CPU time to measure (0: none)")
	fs.BoolVar(&asJSON, "json", true, "print the result as JSON (else key=value)")
	fs.BoolVar(&progress, "progress", false, "print progress to stderr once a second")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a Go CPU profile of the generator to this file")
	if err := fs.Parse(args); err != nil {
		return loadConfig{}, false, "", err
	}
	if fs.NArg() > 0 {
		return loadConfig{}, false, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c = loadConfig{PortIKE: cf.portIKE, PortNATT: cf.portNATT, IKEProposal: cf.ikeProp, ESPProposal: cf.espProp,
		Duration: seconds, Warmup: warmup, Timeout: timeout, ResponderPID: pid}
	first, err := parseAddr("local", cf.local)
	if err != nil {
		return c, false, "", err
	}
	if c.Locals, err = addrRange(first, cf.n); err != nil {
		return c, false, "", fmt.Errorf("-local/-n: %w", err)
	}
	if c.Remote, err = parseAddr("remote", remote); err != nil {
		return c, false, "", err
	}
	for _, p := range []struct {
		name string
		v    int
		dst  *uint16
	}{{"remote-port", remoteIKE, &c.RemoteIKE}, {"remote-natt", remoteNATT, &c.RemoteNATT}} {
		if p.v < 1 || p.v > 65535 {
			return c, false, "", fmt.Errorf("-%s %d: not a port", p.name, p.v)
		}
		*p.dst = uint16(p.v)
	}
	if c.PSK, err = cf.pskBytes(); err != nil {
		return c, false, "", err
	}
	if c.Log, _, err = cf.logger(stderr); err != nil {
		return c, false, "", err
	}
	if progress {
		c.Progress = stderr
	}
	return c, asJSON, cpuProfile, c.check()
}

func parseRespond(args []string, stderr io.Writer) (respondConfig, *os.File, error) {
	var cf commonFlags
	var peers string
	var c respondConfig
	fs := flag.NewFlagSet("ikeload respond", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf.register(fs)
	fs.StringVar(&peers, "peers", "", "first generator address (-n consecutive ones are configured)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a Go CPU profile of the responder to this file")
	fs.StringVar(&c.MemProfile, "memprofile", "", "write a Go heap profile to this file at exit")
	if err := fs.Parse(args); err != nil {
		return respondConfig{}, nil, err
	}
	if fs.NArg() > 0 {
		return respondConfig{}, nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.PortIKE, c.PortNATT, c.IKEProposal, c.ESPProposal = cf.portIKE, cf.portNATT, cf.ikeProp, cf.espProp
	var err error
	if c.Local, err = parseAddr("local", cf.local); err != nil {
		return c, nil, err
	}
	first, err := parseAddr("peers", peers)
	if err != nil {
		return c, nil, err
	}
	if c.Peers, err = addrRange(first, cf.n); err != nil {
		return c, nil, fmt.Errorf("-peers/-n: %w", err)
	}
	if c.PSK, err = cf.pskBytes(); err != nil {
		return c, nil, err
	}
	var f *os.File
	if c.Log, f, err = cf.logger(stderr); err != nil {
		return c, nil, err
	}
	return c, f, nil
}

// serve runs the responder until ctx ends, writing "ready" once it
// listens and a report line on SIGUSR1 and at the end.
func serve(ctx context.Context, c respondConfig, stdout io.Writer) error {
	r, err := newResponder(c)
	if err != nil {
		return err
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	done := make(chan error, 1)
	go func() { done <- r.run(ctx) }()
	ike, natt := r.e.LocalPorts()
	fmt.Fprintf(stdout, "ready %s ports %d %d peers %d\n", c.Local, ike, natt, len(c.Peers))
	for {
		select {
		case <-usr1:
			r.report(stdout)
		case err := <-done:
			r.report(stdout)
			if err != nil {
				return fmt.Errorf("ikeload respond: %w", err)
			}
			return nil
		}
	}
}

// writeHeapProfile writes the live heap after a GC (what the responder
// still holds once it stopped).
func writeHeapProfile(path string, stderr io.Writer) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(stderr, "ikeload: -memprofile:", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		fmt.Fprintln(stderr, "ikeload: -memprofile:", err)
	}
}

func printResult(w io.Writer, r result, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "workers=%d seconds=%g completed=%d failed=%d per_s=%.1f p50_ms=%.2f p99_ms=%.2f",
		r.Workers, r.Seconds, r.Completed, r.Failed, r.PerSecond, r.P50ms, r.P99ms)
	fmt.Fprintf(&sb, " generator_cpu_ms_per_handshake=%.3f responder_cpu_ms_per_handshake=%.3f machine_busy_pct=%.0f retransmits=%d",
		r.GeneratorPerHSms, r.ResponderPerHSms, r.MachineBusyPct, r.Retransmits)
	_, err := fmt.Fprintln(w, sb.String())
	return err
}
