// Libreswan: the --ike-daemon=libreswan entry of the backend registry,
// with ovs-monitor-ipsec's libreswan flags (same names, same defaults)
// and ovnsecd's --pluto-log.

package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/backend/libreswan"
)

// libreswanConfig holds the libreswan flags.
type libreswanConfig struct {
	conf, rootConf, nssDir, secrets, ctl, plutoLog, ipsec string
	defaultCrypto                                         bool
	commandTimeout                                        int
}

// libreswanFlags defines the flags (on fs, into c).
func libreswanFlags(fs *flag.FlagSet, c *libreswanConfig) {
	fs.StringVar(&c.conf, "ipsec-conf", libreswan.DefaultConf, "libreswan configuration `FILE` ovnsecd owns and rewrites")
	fs.StringVar(&c.rootConf, "root-ipsec-conf", "", "libreswan's root configuration `FILE`, which includes --ipsec-conf; every ipsec command reads it (default: --ipsec-conf itself)")
	fs.StringVar(&c.nssDir, "ipsec-d", "", "libreswan's NSS database `DIR` (default /var/lib/ipsec/nss for libreswan 4 and later, /etc/ipsec.d before)")
	fs.StringVar(&c.secrets, "ipsec-secrets", libreswan.DefaultSecrets, "libreswan secrets `FILE` ovnsecd owns and rewrites")
	fs.StringVar(&c.ctl, "ipsec-ctl", libreswan.DefaultCtl, "pluto's control `SOCKET`")
	fs.BoolVar(&c.defaultCrypto, "use-default-crypto", false, "leave ike=, esp= and ikev2= to libreswan's defaults (or the root configuration's conn %default)")
	fs.IntVar(&c.commandTimeout, "command-timeout", int(libreswan.DefaultCommandTimeout/time.Second), "kill an ipsec, certutil, pk12util or openssl command after `SECONDS`")
	fs.StringVar(&c.ipsec, "ipsec-command", libreswan.DefaultIPsec, "libreswan's ipsec `COMMAND`; not an ovs-monitor-ipsec flag (it has --root-prefix)")
	fs.StringVar(&c.plutoLog, "pluto-log", "", "pluto's log `FILE`, read for why a Child SA is missing (a kernel without ESP, a refusing peer); not an ovs-monitor-ipsec flag")
}

// libreswanFlagNames are the flags that apply to --ike-daemon=libreswan
// alone (--no-restart-ike-daemon applies to every IKE daemon).
var libreswanFlagNames = []backendFlag{
	{name: "ipsec-conf"}, {name: "root-ipsec-conf"}, {name: "ipsec-d"}, {name: "ipsec-secrets"},
	{name: "ipsec-ctl"}, {name: "use-default-crypto"}, {name: "command-timeout"}, {name: "pluto-log"}, {name: "ipsec-command"},
}

// validateLibreswan checks the libreswan flags.
func validateLibreswan(c config) error {
	l := c.libreswan
	if l.commandTimeout <= 0 {
		return fmt.Errorf("--command-timeout=%d: want a positive number of seconds", l.commandTimeout)
	}
	for name, p := range map[string]string{"--ipsec-conf": l.conf, "--ipsec-secrets": l.secrets, "--ipsec-ctl": l.ctl} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%s=%q: want an absolute path", name, p)
		}
	}
	if l.conf == l.secrets {
		return fmt.Errorf("--ipsec-conf and --ipsec-secrets name the same file %s", l.conf)
	}
	return nil
}

// newLibreswanBackend builds --ike-daemon=libreswan: pluto through the
// ipsec command.
func newLibreswanBackend(ctx context.Context, c config, sh shared, log *slog.Logger) (backend.Backend, error) {
	l := c.libreswan
	b, err := libreswan.New(ctx, libreswan.Config{
		IPsec: l.ipsec, Conf: l.conf, RootConf: l.rootConf, Secrets: l.secrets, NSSDir: l.nssDir, Ctl: l.ctl,
		DefaultCrypto:  l.defaultCrypto,
		Restart:        !c.noRestart && sh.inherited == nil,
		CommandTimeout: time.Duration(l.commandTimeout) * time.Second,
		PlutoLog:       l.plutoLog,
		Creds:          sh.creds, Clock: sh.clock,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("start the libreswan backend: %w", err)
	}
	return b, nil
}
