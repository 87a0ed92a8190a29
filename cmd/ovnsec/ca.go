// Stage: `ovnsec ca`. The EST CA service on top of internal/enroll and the
// ovs-pki directory `ovnsec pki` writes (`serve`), and the bootstrap tokens
// chassis enrol with (`token create|list|revoke`).

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ovnsec/ovnsec/internal/enroll"
	"github.com/ovnsec/ovnsec/internal/pki"
)

var caOptSpecs = []optSpec{
	{"dir", 'd', true},
	{"listen", 0, true},
	{"sb-db", 0, true},
	{"no-check-source", 0, false},
	{"lifetime", 0, true},
	{"cert", 0, true},
	{"key", 0, true},
	{"chassis", 0, true},
	{"ttl", 0, true},
	{"reusable", 0, false},
	{"overlap", 0, true},
	{"verbose", 'v', false},
	{"help", 'h', false},
}

// caOptsFor lists the options each command takes (besides --dir, --help).
var caOptsFor = map[string][]string{
	"serve":        {"listen", "sb-db", "no-check-source", "lifetime", "cert", "key", "verbose"},
	"token create": {"chassis", "ttl", "reusable"},
	"token list":   {},
	"token revoke": {},
	"rollover":     {"overlap"},
}

const caUsage = `usage: ovnsec ca COMMAND [OPTION...]
The EST (RFC 7030) certificate authority for chassis certificates, serving
the switch CA of an ovs-pki directory (ovnsec pki init, or ovs-pki's own).

Commands:
  serve --listen ADDR [--sb-db REMOTE [--no-check-source]]
        [--lifetime DURATION] [--cert FILE --key FILE] [-v]
        Serve https://ADDR/.well-known/est/{cacerts,simpleenroll,
        simplereenroll}. Without --cert/--key the CA issues the server's
        TLS certificate for ADDR's IP (every local IP for ":PORT") and the
        host name. --sb-db: a chassis must be a Chassis in the OVN
        Southbound database (tcp:IP:PORT or unix:PATH) and enrol from one
        of its Encap IPs (unless --no-check-source). --lifetime of issued
        certificates: default 90d.
  token create --chassis NAME [--ttl DURATION] [--reusable]
        Print a new bootstrap token for NAME on stdout (valid 24h by
        default, one-time unless --reusable). Only its hash is stored.
  token list
        List tokens: id, chassis, state, expiry, uses.
  token revoke ID
        Revoke a token.
  rollover [--overlap DURATION]
        Make a new switch CA key and certificate, which signs from now on
        (the server follows at once). The current CA stays trusted and is
        published by cacerts, with the link certificates, for the overlap
        (default 90d: give at least the certificate lifetime); then it
        retires. A later rollover removes retired CAs from the files.

Options:
  -d, --dir=DIR   PKI directory (default: /var/lib/openvswitch/pki)
DURATION is a Go duration (90m, 36h) or a number of days (90d).
`

func runCA(ctx context.Context, s stdio, args []string) int {
	opts, err := parseOpts(args, caOptSpecs)
	if err != nil {
		return caUsageError(s, err)
	}
	if opts.has("help") {
		fmt.Fprint(s.out, caUsage)
		return exitOK
	}
	if len(opts.args) == 0 {
		return caUsageError(s, errors.New("missing command; use --help for help"))
	}
	cmd, cargs := opts.args[0], opts.args[1:]
	if cmd == "token" {
		if len(cargs) == 0 {
			return caUsageError(s, errors.New("token needs create, list or revoke"))
		}
		cmd, cargs = "token "+cargs[0], cargs[1:]
	}
	allowed, ok := caOptsFor[cmd]
	if !ok {
		return caUsageError(s, fmt.Errorf("%s: unknown command; use --help for help", cmd))
	}
	for name := range opts.vals {
		if name != "dir" && name != "help" && !contains(allowed, name) {
			return caUsageError(s, fmt.Errorf("--%s is not an option of %s", name, cmd))
		}
	}
	dir := opts.get("dir", pki.DefaultDir)
	if s.dir != "" && !filepath.IsAbs(dir) {
		dir = filepath.Join(s.dir, dir)
	}
	wantArgs := 0
	if cmd == "token revoke" {
		wantArgs = 1
	}
	if len(cargs) != wantArgs {
		return caUsageError(s, fmt.Errorf("%s takes %d argument(s), not %d", cmd, wantArgs, len(cargs)))
	}
	switch cmd {
	case "serve":
		return caResult(s, caServe(ctx, s, dir, opts))
	case "token create":
		return caResult(s, caTokenCreate(s, dir, opts))
	case "token list":
		return caResult(s, caTokenList(s, dir))
	case "rollover":
		return caResult(s, caRollover(s, dir, opts))
	default:
		return caResult(s, enroll.NewTokenStore(dir, nil).Revoke(enroll.TokenID(cargs[0])))
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func caUsageError(s stdio, err error) int {
	fmt.Fprintf(s.err, "ovnsec ca: %v\n", err)
	return exitUsage
}

func caResult(s stdio, err error) int {
	if err != nil {
		fmt.Fprintf(s.err, "ovnsec ca: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// parseDuration reads a Go duration or a whole number of days ("90d").
func parseDuration(opt, v string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err == nil && n > 0 && n <= 36500 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("--%s %q: want a positive duration such as 90d, 36h or 30m", opt, v)
}

// pkiDirMustExist gives the same message as ovnsec pki for a missing CA.
func pkiDirMustExist(dir string) error {
	if _, err := (pki.Dir{Path: dir}).LoadCA(pki.SwitchCA); err != nil {
		return fmt.Errorf("%w (create the CA with ovnsec pki --dir %s init)", err, dir)
	}
	return nil
}

func caServe(ctx context.Context, s stdio, dir string, opts parsedOpts) error {
	listen := opts.get("listen", "")
	if listen == "" {
		return errors.New("serve needs --listen ADDR (e.g. :8443 or 192.0.2.1:8443)")
	}
	level := slog.LevelInfo
	if opts.has("verbose") {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: level}))
	cfg := enroll.Config{Dir: dir, Log: log, CheckSource: !opts.has("no-check-source")}
	if v := opts.get("lifetime", ""); v != "" {
		d, err := parseDuration("lifetime", v)
		if err != nil {
			return err
		}
		cfg.Lifetime = d
	}
	if opts.has("no-check-source") && !opts.has("sb-db") {
		return errors.New("--no-check-source needs --sb-db (without it no source is checked)")
	}
	if remote := opts.get("sb-db", ""); remote != "" {
		sb, err := enroll.NewSBChassis(remote, log)
		if err != nil {
			return err
		}
		defer sb.Close()
		cfg.Chassis = sb
	}
	var given *tls.Certificate
	if opts.has("cert") != opts.has("key") {
		return errors.New("--cert and --key go together")
	}
	if opts.has("cert") {
		c, err := tls.LoadX509KeyPair(opts.get("cert", ""), opts.get("key", ""))
		if err != nil {
			return fmt.Errorf("server certificate: %w", err)
		}
		given = &c
	}
	if err := pkiDirMustExist(dir); err != nil {
		return err
	}
	srv, err := enroll.NewServer(cfg)
	if err != nil {
		return err
	}
	id, err := enroll.ListenIdentity(listen)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	tc := srv.TLSConfig(id, given)
	if given == nil {
		// Issue the certificate now: a CA that cannot sign fails at start.
		if _, err := tc.GetCertificate(nil); err != nil {
			ln.Close()
			return err
		}
	}
	log.Info("EST CA service listening", "addr", ln.Addr().String(), "dir", dir, "sb_db", opts.get("sb-db", ""), "check_source", cfg.CheckSource && cfg.Chassis != nil)
	return srv.Serve(ctx, ln, tc)
}

func caTokenCreate(s stdio, dir string, opts parsedOpts) error {
	name := opts.get("chassis", "")
	if name == "" {
		return errors.New("token create needs --chassis NAME")
	}
	var ttl time.Duration
	if v := opts.get("ttl", ""); v != "" {
		d, err := parseDuration("ttl", v)
		if err != nil {
			return err
		}
		ttl = d
	}
	if err := pkiDirMustExist(dir); err != nil {
		return err
	}
	tok, rec, err := enroll.NewTokenStore(dir, nil).Create(name, ttl, opts.has("reusable"))
	if err != nil {
		return err
	}
	fmt.Fprintln(s.out, tok.Secret())
	kind := "one-time"
	if rec.Reusable {
		kind = "reusable"
	}
	fmt.Fprintf(s.err, "ovnsec ca: %s token %s for chassis %s, valid until %s\n", kind, rec.ID, rec.Chassis, rec.Expires.Format(time.RFC3339))
	return nil
}

func caTokenList(s stdio, dir string) error {
	recs, err := enroll.NewTokenStore(dir, nil).List()
	if err != nil {
		return err
	}
	now := time.Now()
	tw := tabwriter.NewWriter(s.out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCHASSIS\tSTATE\tKIND\tEXPIRES\tUSES\tLAST USED")
	for _, r := range recs {
		kind, last := "one-time", "-"
		if r.Reusable {
			kind = "reusable"
		}
		if !r.LastUsed.IsZero() {
			last = r.LastUsed.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.Chassis, r.State(now), kind, r.Expires.Format(time.RFC3339), r.Uses, last)
	}
	return tw.Flush()
}

func caRollover(s stdio, dir string, opts parsedOpts) error {
	overlap := enroll.DefaultLifetime
	if v := opts.get("overlap", ""); v != "" {
		d, err := parseDuration("overlap", v)
		if err != nil {
			return err
		}
		overlap = d
	}
	if err := pkiDirMustExist(dir); err != nil {
		return err
	}
	res, err := pki.Dir{Path: dir}.Rollover(pki.RolloverOptions{Overlap: overlap})
	if err != nil {
		return err
	}
	for _, c := range res.Dropped {
		fmt.Fprintf(s.out, "removed retired CA %s (serial %s)\n", c.Subject.CommonName, pki.FormatSerial(c.SerialNumber))
	}
	fmt.Fprintf(s.out, "new CA %s (serial %s) signs from now on\n", res.New.Subject.CommonName, pki.FormatSerial(res.New.SerialNumber))
	fmt.Fprintf(s.out, "old CA %s (serial %s) is trusted and published until %s\n", res.Old.Subject.CommonName, pki.FormatSerial(res.Old.SerialNumber), res.Retire.Format(time.RFC3339))
	return nil
}
