// OVS command stage: the few ovs-vsctl and ovs-ofctl invocations the
// attachment needs, behind an injectable Runner, and parsers for the parts
// of their output it reads (flow counters, port list).

package ovsbridge

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Runner runs a command with the given standard input and returns its
// standard output. The error of a failed command carries its stderr.
type Runner interface {
	Run(ctx context.Context, stdin string, name string, args ...string) (string, error)
}

// ExecRunner runs real programs.
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, stdin, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// OVS addresses one ovs-vswitchd and its database.
type OVS struct {
	Runner Runner
	// DB is ovs-vsctl's --db (e.g. "unix:/run/openvswitch/db.sock"); empty
	// uses ovs-vsctl's default.
	DB string
	// Target is what ovs-ofctl talks to: a bridge name (default socket) or
	// "unix:<rundir>/<bridge>.mgmt".
	Target string
	// Timeout bounds each command; default 10 s.
	Timeout time.Duration
}

func (o OVS) run(ctx context.Context, stdin, name string, args ...string) (string, error) {
	t := o.Timeout
	if t <= 0 {
		t = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	r := o.Runner
	if r == nil {
		r = ExecRunner{}
	}
	return r.Run(ctx, stdin, name, args...)
}

// Vsctl runs ovs-vsctl with the database option and a timeout.
func (o OVS) Vsctl(ctx context.Context, args ...string) (string, error) {
	a := []string{"--timeout=10"}
	if o.DB != "" {
		a = append(a, "--db="+o.DB)
	}
	return o.run(ctx, "", "ovs-vsctl", append(a, args...)...)
}

// ReplaceFlows atomically replaces br-phy's whole flow table with flows
// (OpenFlow 1.4 bundle). Unchanged flows keep their counters.
func (o OVS) ReplaceFlows(ctx context.Context, flows []Flow) error {
	_, err := o.run(ctx, Text(flows), "ovs-ofctl", "-O", "OpenFlow14", "--bundle", "replace-flows", o.Target, "-")
	if err != nil {
		return fmt.Errorf("install flows on %s: %w", o.Target, err)
	}
	return nil
}

// DumpFlows returns the flows whose cookie matches cookie under mask.
func (o OVS) DumpFlows(ctx context.Context, cookie, mask uint64) ([]FlowStat, error) {
	sel := fmt.Sprintf("cookie=%#x/%#x", cookie, mask)
	out, err := o.run(ctx, "", "ovs-ofctl", "-O", "OpenFlow14", "--no-names", "dump-flows", o.Target, sel)
	if err != nil {
		return nil, fmt.Errorf("dump flows of %s: %w", o.Target, err)
	}
	return ParseDumpFlows(out)
}

// Ports returns br-phy's OpenFlow ports by name.
func (o OVS) Ports(ctx context.Context) (map[string]PortInfo, error) {
	out, err := o.run(ctx, "", "ovs-ofctl", "-O", "OpenFlow10", "show", o.Target)
	if err != nil {
		return nil, fmt.Errorf("list ports of %s: %w", o.Target, err)
	}
	return ParseShow(out), nil
}

// SetNoFlood marks port so that NORMAL never floods to it. The flag lives
// in ovs-vswitchd's memory only (OpenFlow 1.0 port config) and is lost when
// it restarts; the attachment re-applies it.
func (o OVS) SetNoFlood(ctx context.Context, port string) error {
	_, err := o.run(ctx, "", "ovs-ofctl", "-O", "OpenFlow10", "mod-port", o.Target, port, "no-flood")
	if err != nil {
		return fmt.Errorf("mark port %s no-flood on %s: %w", port, o.Target, err)
	}
	return nil
}

// FlowStat is one flow from dump-flows.
type FlowStat struct {
	Cookie   uint64
	Priority int
	Packets  uint64
	Bytes    uint64
	Match    string // as printed, without priority
	Actions  string
}

// Kind returns the flow kind carried in the cookie's low byte.
func (s FlowStat) Kind() Kind { return Kind(s.Cookie & kindMask) }

// ParseDumpFlows parses `ovs-ofctl dump-flows` output. Lines that are not
// flows (the reply header) are skipped; a flow line with a malformed
// counter is an error.
func ParseDumpFlows(out string) ([]FlowStat, error) {
	var flows []FlowStat
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "cookie=") {
			continue
		}
		head, actions, ok := strings.Cut(line, " actions=")
		if !ok {
			return nil, fmt.Errorf("dump-flows line without actions: %q", line)
		}
		fs := FlowStat{Priority: 32768, Actions: actions}
		for _, tok := range strings.Split(head, ", ") {
			// Flags ("send_flow_rem", "reset_counts", ...) are printed
			// space-separated in front of the next field.
			if i := strings.LastIndexByte(tok, ' '); i >= 0 {
				tok = tok[i+1:]
			}
			k, v, _ := strings.Cut(tok, "=")
			var err error
			switch k {
			case "cookie":
				fs.Cookie, err = strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
			case "n_packets":
				fs.Packets, err = strconv.ParseUint(v, 10, 64)
			case "n_bytes":
				fs.Bytes, err = strconv.ParseUint(v, 10, 64)
			case "duration", "table", "idle_age", "hard_age", "idle_timeout", "hard_timeout", "reset_counts", "send_flow_rem", "check_overlap", "no_packet_counts", "no_byte_counts", "importance":
			default:
				// The match: "priority=N,fields..." or just "fields" at the
				// default priority.
				m := tok
				if strings.HasPrefix(m, "priority=") {
					p, rest, _ := strings.Cut(strings.TrimPrefix(m, "priority="), ",")
					fs.Priority, err = strconv.Atoi(p)
					m = rest
				}
				fs.Match = m
			}
			if err != nil {
				return nil, fmt.Errorf("dump-flows line %q: field %s: %w", line, k, err)
			}
		}
		flows = append(flows, fs)
	}
	return flows, nil
}

// PortInfo is one OpenFlow port from `ovs-ofctl show`.
type PortInfo struct {
	OFPort  string // number, or "LOCAL"
	NoFlood bool
	Down    bool // config PORT_DOWN
}

// ParseShow parses the port list of `ovs-ofctl -O OpenFlow10 show`.
func ParseShow(out string) map[string]PortInfo {
	ports := make(map[string]PortInfo)
	cur := ""
	for _, line := range strings.Split(out, "\n") {
		t := strings.TrimSpace(line)
		// " 2(tap0): addr:..." starts a port block.
		if i := strings.Index(t, "("); i > 0 && strings.Contains(t, "): addr:") {
			j := strings.Index(t, ")")
			if j > i {
				cur = t[i+1 : j]
				ports[cur] = PortInfo{OFPort: t[:i]}
				continue
			}
		}
		if cur == "" {
			continue
		}
		if v, ok := strings.CutPrefix(t, "config:"); ok {
			p := ports[cur]
			for _, f := range strings.Fields(v) {
				switch f {
				case "NO_FLOOD":
					p.NoFlood = true
				case "PORT_DOWN":
					p.Down = true
				}
			}
			ports[cur] = p
		}
	}
	return ports
}
