// Stage: `ovnsec pki`. ovs-pki's commands, arguments, options, output and
// file layout on top of internal/pki, plus `check`, which says whether a
// certificate is usable for IPsec and what to do if not.

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ovnsec/ovnsec/internal/pki"
)

// pkiOpts are all options of `ovnsec pki`. --key takes a key type (rsa or
// ecdsa) except for check, where it names the private key file.
var pkiOptSpecs = []optSpec{
	{"dir", 'd', true},
	{"force", 'f', false},
	{"batch", 'b', false},
	{"key", 'k', true},
	{"bits", 'B', true},
	{"days", 0, true},
	{"dsaparam", 'D', true},
	{"log", 'l', true},
	{"unique", 'u', false},
	{"ca", 0, true},
	{"name", 0, true},
	{"warn-days", 0, true},
	{"allow-extra-sans", 0, false},
	{"help", 'h', false},
	{"version", 'V', false},
}

const pkiUsage = `usage: ovnsec pki [OPTION...] COMMAND [ARG...]
Manage an ovs-pki compatible public key infrastructure for OVS/OVN IPsec.

Commands (as ovs-pki):
  init                 Create the PKI: <dir>/controllerca and <dir>/switchca
  req NAME             New private key NAME-privkey.pem and request
                       NAME-req.pem in the current directory (CN = NAME)
  sign NAME [TYPE]     Sign NAME-req.pem, producing NAME-cert.pem
  req+sign NAME [TYPE] Both of the above
  verify NAME [TYPE]   Check that NAME-cert.pem is signed by the TYPE CA
  fingerprint FILE     Print the fingerprint of FILE
  self-sign NAME       Sign NAME-req.pem with NAME-privkey.pem into a
                       self-signed NAME-cert.pem
TYPE is 'switch' (default, used by IPsec) or 'controller'.

  check CERT [--key KEY] [--ca CA] [--name NAME] [--warn-days N]
                       Check that CERT is usable for IPsec: one line per
                       check; exits non-zero when any check fails.
                       Without --ca but with --dir, the switch CA is used.

Options:
  -d, --dir=DIR        PKI directory (default: /var/lib/openvswitch/pki)
  -f, --force          Replace existing files
  -b, --batch          sign: do not ask to confirm the fingerprint, and
                       drop (with a warning) subjectAltName entries of the
                       request other than DNS:<CN> instead of refusing it
      --allow-extra-sans
                       sign, req+sign: copy subjectAltName entries other
                       than DNS:<CN> from the request (the certificate then
                       also authenticates as those names)
  -k, --key=rsa|ecdsa  Key type for init, req, req+sign (default: rsa)
  -B, --bits=N         Key size: RSA 2048..16384 (default 3072),
                       ECDSA 256, 384 or 521 (default 256)
      --days=N         Validity of sign, req+sign, self-sign certificates
                       (default 3650; the CA is always 3650 days)
  -u, --unique         Accepted for ovs-pki compatibility (CN is always NAME)
  -l, --log=FILE       Accepted for ovs-pki compatibility (nothing is logged)
  -h, --help           Print this message
  -V, --version        Print the version
`

// pkiCmd is one parsed invocation of `ovnsec pki`.
type pkiCmd struct {
	s      stdio
	opts   parsedOpts
	dir    pki.Dir
	force  bool
	key    pki.KeySpec
	days   int
	caType pki.CAType
	sans   pki.SANPolicy
}

func runPKI(ctx context.Context, s stdio, args []string) int {
	opts, err := parseOpts(args, pkiOptSpecs)
	if err != nil {
		return usageError(s, err)
	}
	if opts.has("help") {
		fmt.Fprint(s.out, pkiUsage)
		return exitOK
	}
	if opts.has("version") {
		fmt.Fprintln(s.out, "ovnsec pki (ovnsec) dev")
		return exitOK
	}
	if len(opts.args) == 0 {
		return usageError(s, errors.New("missing command name; use --help for help"))
	}
	c := &pkiCmd{s: s, opts: opts, force: opts.has("force")}
	c.dir = pki.Dir{Path: c.path(opts.get("dir", pki.DefaultDir))}
	cmd, cargs := opts.args[0], opts.args[1:]
	if err := c.parseCommon(cmd); err != nil {
		return usageError(s, err)
	}
	switch cmd {
	case "init":
		err = c.exactArgs(cmd, cargs, 0)
		if err == nil {
			return c.result(c.init())
		}
	case "req":
		err = c.exactArgs(cmd, cargs, 1)
		if err == nil {
			return c.result(c.req(cargs[0]))
		}
	case "sign", "req+sign", "verify":
		if len(cargs) < 1 || len(cargs) > 2 {
			err = fmt.Errorf("%s must have one or two arguments; use --help for help", cmd)
			break
		}
		typ := ""
		if len(cargs) == 2 {
			typ = cargs[1]
		}
		if c.caType, err = pki.ParseCAType(typ); err != nil {
			break
		}
		switch cmd {
		case "sign":
			return c.result(c.sign(cargs[0]))
		case "req+sign":
			return c.result(c.reqSign(cargs[0]))
		default:
			return c.result(c.verify(cargs[0]))
		}
	case "fingerprint":
		err = c.exactArgs(cmd, cargs, 1)
		if err == nil {
			return c.result(c.fingerprint(cargs[0]))
		}
	case "self-sign":
		err = c.exactArgs(cmd, cargs, 1)
		if err == nil {
			return c.result(c.selfSign(cargs[0]))
		}
	case "check":
		err = c.exactArgs(cmd, cargs, 1)
		if err == nil {
			return c.check(cargs[0])
		}
	default:
		err = fmt.Errorf("%s command unknown; use --help for help", cmd)
	}
	return usageError(s, err)
}

func usageError(s stdio, err error) int {
	fmt.Fprintf(s.err, "ovnsec pki: %v\n", err)
	return exitUsage
}

// result prints err, if any, and returns the exit code.
func (c *pkiCmd) result(err error) int {
	if err != nil {
		fmt.Fprintf(c.s.err, "ovnsec pki: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func (c *pkiCmd) exactArgs(cmd string, args []string, n int) error {
	if len(args) == n {
		return nil
	}
	if n == 0 {
		return fmt.Errorf("%s takes no arguments; use --help for help", cmd)
	}
	return fmt.Errorf("%s must have exactly one argument; use --help for help", cmd)
}

// parseCommon validates the options against the command.
func (c *pkiCmd) parseCommon(cmd string) error {
	if c.opts.has("dsaparam") {
		return errors.New("--dsaparam: DSA keys are not supported, use --key rsa or --key ecdsa")
	}
	if c.opts.has("allow-extra-sans") && cmd != "sign" && cmd != "req+sign" {
		return errors.New("--allow-extra-sans applies only to sign and req+sign")
	}
	switch {
	case c.opts.has("allow-extra-sans"):
		c.sans = pki.AllowExtraSANs
	case c.opts.has("batch"):
		c.sans = pki.DropExtraSANs
	default:
		c.sans = pki.RefuseExtraSANs
	}
	checkOnly := []string{"ca", "name", "warn-days"}
	if cmd == "check" {
		for _, o := range []string{"bits", "days", "batch", "unique"} {
			if c.opts.has(o) {
				return fmt.Errorf("--%s does not apply to check", o)
			}
		}
		return nil
	}
	for _, o := range checkOnly {
		if c.opts.has(o) {
			return fmt.Errorf("--%s applies only to check", o)
		}
	}
	typ, err := pki.ParseKeyType(c.opts.get("key", "rsa"))
	if err != nil {
		return err
	}
	c.key.Type = typ
	if v, ok := c.opts.vals["bits"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("--bits %q is not a positive number", v)
		}
		c.key.Bits = n
	}
	if v, ok := c.opts.vals["days"]; ok {
		if cmd == "init" {
			return fmt.Errorf("--days applies to sign, req+sign and self-sign; the CA is always valid for %d days", pki.CADays)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("--days %q is not a positive number", v)
		}
		c.days = n
	}
	return nil
}

// path resolves p against the command's working directory.
func (c *pkiCmd) path(p string) string {
	if c.s.dir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.s.dir, p)
}

// files returns NAME's files resolved against the working directory, and
// their names as shown to the user (as given, like ovs-pki).
func (c *pkiCmd) files(name string) (real, shown pki.Files) {
	return pki.FilesFor(c.s.dir, name), pki.FilesFor("", name)
}

func (c *pkiCmd) init() error {
	if err := c.dir.Init(pki.InitOptions{Key: c.key, Force: c.force}); err != nil {
		return err
	}
	fmt.Fprintf(c.s.err, "Created controllerca and switchca in %s\n", c.dir.Path)
	return nil
}

func (c *pkiCmd) req(name string) error {
	if _, err := pki.Req(c.s.dir, name, pki.ReqOptions{Key: c.key, Force: c.force}, c.dir.Env); err != nil {
		return err
	}
	_, shown := c.files(name)
	return c.fingerprint(shown.Req)
}

func (c *pkiCmd) sign(name string) error {
	f, shown := c.files(name)
	if err := c.fingerprint(shown.Req); err != nil {
		return err
	}
	if !c.opts.has("batch") {
		// Refuse a request naming more than its CN before asking.
		if c.sans == pki.RefuseExtraSANs {
			csr, err := pki.LoadRequest(f.Req)
			if err != nil {
				return err
			}
			if err := pki.CheckRequestSANs(csr); err != nil {
				return fmt.Errorf("sign %s: %w", shown.Req, err)
			}
		}
		fmt.Fprintln(c.s.out, "Does fingerprint match? (yes/no)")
		answer, _ := bufio.NewReader(c.s.in).ReadString('\n')
		if strings.TrimSpace(answer) != "yes" {
			return errors.New("Match failure, aborting")
		}
	}
	return c.signFiles(f)
}

func (c *pkiCmd) signFiles(f pki.Files) error {
	res, err := c.dir.Sign(f.Req, f.Cert, pki.SignOptions{Type: c.caType, Days: c.days, Force: c.force, SANs: c.sans})
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.s.err, "ovnsec pki: warning: %s\n", w)
	}
	return nil
}

// reqSign makes the request and signs it; if signing fails the new key
// and request are removed again so that nothing changes on disk.
func (c *pkiCmd) reqSign(name string) error {
	f, shown := c.files(name)
	if _, err := c.dir.LoadCA(c.caType); err != nil {
		return err
	}
	if !c.force {
		if _, err := os.Lstat(f.Cert); err == nil {
			return fmt.Errorf("%s %w (remove it or pass --force)", shown.Cert, pki.ErrExists)
		}
	}
	if _, err := pki.Req(c.s.dir, name, pki.ReqOptions{Key: c.key, Force: c.force}, c.dir.Env); err != nil {
		return err
	}
	if err := c.signFiles(f); err != nil {
		if !c.force {
			os.Remove(f.Key)
			os.Remove(f.Req)
		}
		return err
	}
	return c.fingerprint(shown.Req)
}

func (c *pkiCmd) verify(name string) error {
	f, shown := c.files(name)
	if err := c.dir.Verify(f.Cert, pki.VerifyOptions{Type: c.caType}); err != nil {
		var notExist bool
		if _, serr := os.Stat(f.Cert); serr != nil {
			notExist = true
		}
		if notExist {
			return err
		}
		fmt.Fprintf(c.s.out, "%s: verification failed: %v\n", shown.Cert, err)
		return fmt.Errorf("%s is not signed by the %s CA in %s (or is not valid now)", shown.Cert, c.caType, c.dir.Path)
	}
	fmt.Fprintf(c.s.out, "%s: OK\n", shown.Cert)
	return nil
}

// fingerprint prints ovs-pki's fingerprint lines for file (shown as given).
func (c *pkiCmd) fingerprint(file string) error {
	p := c.path(file)
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s does not exist", file)
		}
		return fmt.Errorf("fingerprint %s: %w", file, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("fingerprint %s: %w", file, err)
	}
	fp, err := pki.FingerprintOf(data)
	if err != nil {
		return fmt.Errorf("fingerprint %s: %w", file, err)
	}
	_, err = io.WriteString(c.s.out, pki.FormatFingerprint(file, fi.ModTime(), fp))
	return err
}

func (c *pkiCmd) selfSign(name string) error {
	_, err := pki.SelfSign(c.s.dir, name, pki.SelfSignOptions{Days: c.days, Force: c.force}, c.dir.Env)
	return err
}

// check prints one line per check and a summary; exit 1 if any failed.
func (c *pkiCmd) check(cert string) int {
	o := pki.CheckOptions{Name: c.opts.get("name", "")}
	if v, ok := c.opts.vals["key"]; ok {
		o.KeyPath = c.path(v)
	}
	if v, ok := c.opts.vals["ca"]; ok {
		o.CAPath = c.path(v)
	} else if c.opts.has("dir") {
		o.CAPath = c.dir.CACertPath(pki.SwitchCA)
	}
	if v, ok := c.opts.vals["warn-days"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return usageError(c.s, fmt.Errorf("--warn-days %q is not a number", v))
		}
		if n == 0 {
			n = -1
		}
		o.WarnDays = n
	}
	o.Now = c.dir.Now
	rep := pki.Check(c.path(cert), o)
	failed := len(rep.Failures())
	for _, r := range rep.Results {
		fmt.Fprintln(c.s.out, r.String())
	}
	if failed > 0 {
		fmt.Fprintf(c.s.out, "%s: %d of %d checks failed; not usable for IPsec until fixed\n", cert, failed, len(rep.Results))
		return exitFailure
	}
	fmt.Fprintf(c.s.out, "%s: usable for IPsec\n", cert)
	return exitOK
}
