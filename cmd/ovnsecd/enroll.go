// Enrolment: with --enroll, ovnsecd keeps this chassis' certificate itself
// (internal/enroll). The chassis name is Open_vSwitch external_ids:system-id;
// when other_config:certificate is missing, expired, for another name or
// not from the served CA, it enrols with the bootstrap token, writes the
// key, certificate and CA bundle under --enroll-dir and points
// other_config:certificate, private_key and ca_cert at them. Renewals are
// written under the same paths: the credentials store notices and the
// backends follow without tearing SAs down. `ovs-appctl ca/status` shows
// where it stands, `ca/renew` renews at once.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
	"github.com/ovnsec/ovnsec/internal/enroll"
	"github.com/ovnsec/ovnsec/internal/ovsconf"
	"github.com/ovnsec/ovnsec/internal/pki"
)

// defaultEnrollDir is where enrolled files go without --enroll-dir:
// beside OVS's own configuration, kept across reboots (the bootstrap
// token is one-time), mounted into the ovn-kubernetes DaemonSet.
const defaultEnrollDir = "/etc/openvswitch/ovnsec"

// enrollFlags are the flags that only mean something with --enroll.
var enrollFlags = []string{"enroll-token-file", "enroll-ca-cert", "enroll-ca-fingerprint", "enroll-dir"}

// checkEnroll checks the --enroll flags at start, so that a mistake stops
// ovnsecd with a message instead of a status line later.
func checkEnroll(c config) error {
	if c.enroll == "" {
		for _, f := range enrollFlags {
			if _, ok := c.given[f]; ok {
				return fmt.Errorf("--%s needs --enroll=https://HOST:PORT (the CA service)", f)
			}
		}
		return nil
	}
	if _, err := enroll.ParseServerURL(c.enroll); err != nil {
		return fmt.Errorf("--enroll: %w", err)
	}
	if !filepath.IsAbs(c.enrollDir) {
		return fmt.Errorf("--enroll-dir %q: give an absolute path", c.enrollDir)
	}
	if c.enrollTokenFile != "" && !filepath.IsAbs(c.enrollTokenFile) {
		return fmt.Errorf("--enroll-token-file %q: give an absolute path", c.enrollTokenFile)
	}
	_, err := enrollTrust(c)
	return err
}

// enrollTrust is the first-contact trust the flags give.
func enrollTrust(c config) (enroll.Trust, error) {
	var t enroll.Trust
	switch {
	case c.enrollCACert != "" && c.enrollCAFingerprint != "":
		return t, errors.New("give --enroll-ca-cert or --enroll-ca-fingerprint, not both")
	case c.enrollCACert != "":
		cas, err := pki.LoadCertificates(c.enrollCACert)
		if err != nil {
			return t, fmt.Errorf("--enroll-ca-cert: %w", err)
		}
		t.Anchors = cas
	case c.enrollCAFingerprint != "":
		fp, err := enroll.ParseFingerprint(c.enrollCAFingerprint)
		if err != nil {
			return t, fmt.Errorf("--enroll-ca-fingerprint: %w", err)
		}
		t.Fingerprint = &fp
	default:
		return t, errors.New("--enroll needs --enroll-ca-cert=FILE or --enroll-ca-fingerprint=SHA256 to trust the CA service at the first contact")
	}
	if err := t.Check(); err != nil {
		return t, fmt.Errorf("--enroll-ca-cert: %w", err)
	}
	return t, nil
}

// enrollment runs the Enroller once the chassis name is known.
type enrollment struct {
	cfg   config
	log   *slog.Logger
	clock clock.Clock

	mu      sync.Mutex
	e       *enroll.Enroller
	waiting string // why there is no Enroller yet
}

// startEnroll starts automatic certificates when --enroll is given; start
// is system.run's goroutine starter. It runs before the control socket
// serves, so ca/status never sees a half-made enrollment.
func (s *system) startEnroll(start func(string, func(context.Context) error)) {
	if s.cfg.enroll == "" {
		return
	}
	s.enroll = &enrollment{cfg: s.cfg, log: s.log.With("stage", "enroll"), clock: s.clock, waiting: "starting"}
	start("enroll", s.enroll.run)
}

func (n *enrollment) setWaiting(why string) {
	n.mu.Lock()
	changed := n.waiting != why
	n.waiting = why
	n.mu.Unlock()
	if changed {
		n.log.Warn("automatic certificates: waiting", "why", why)
	}
}

// sleep waits d on the daemon's clock; false when ctx ended.
func (n *enrollment) sleep(ctx context.Context, d time.Duration) bool {
	ch := make(chan struct{}, 1)
	t := n.clock.AfterFunc(d, func() { ch <- struct{}{} })
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-ch:
		return true
	}
}

// run finds the chassis name and the certificate in use, then keeps the
// chassis enrolled until ctx ends.
func (n *enrollment) run(ctx context.Context) error {
	c := n.cfg
	delay := time.Second
	var (
		e   *enroll.Enroller
		err error
	)
	for e == nil {
		e, err = n.setup(ctx)
		if err != nil {
			n.setWaiting(err.Error())
			if !n.sleep(ctx, delay) {
				return nil
			}
			delay = min(2*delay, 30*time.Second)
		}
	}
	n.mu.Lock()
	n.e, n.waiting = e, ""
	n.mu.Unlock()
	n.log.Info("automatic certificates on", "server", c.enroll, "dir", c.enrollDir)
	return e.Run(ctx)
}

// setup reads what the Enroller needs; an error says what it waits for.
func (n *enrollment) setup(ctx context.Context) (*enroll.Enroller, error) {
	c := n.cfg
	trust, err := enrollTrust(c)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	row, err := ovsconf.ReadOpenvSwitch(rctx, c.database, n.log)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("reading the chassis name from the database: %w", err)
	}
	name := row.ExternalIDs["system-id"]
	if name == "" {
		return nil, fmt.Errorf("Open_vSwitch external_ids:system-id is not set; it names this chassis (ovs-vsctl set Open_vSwitch . external_ids:system-id=NAME)")
	}
	if err := pki.ValidateName(name); err != nil {
		return nil, fmt.Errorf("Open_vSwitch external_ids:system-id cannot name a chassis certificate: %w", err)
	}
	if err := enroll.PrepareDir(c.enrollDir); err != nil {
		return nil, err
	}
	cl, err := enroll.NewClient(c.enroll, n.clock)
	if err != nil {
		return nil, err
	}
	oc := row.OtherConfig
	db := c.database
	return enroll.NewEnroller(enroll.EnrollerConfig{
		Client: cl, Name: name, Paths: enroll.PathsIn(c.enrollDir),
		InUse: enroll.Paths{Cert: oc["certificate"], Key: oc["private_key"], CA: oc["ca_cert"]},
		Trust: trust, TokenFile: c.enrollTokenFile, Clock: n.clock, Log: n.log,
		Publish: func(ctx context.Context, p enroll.Paths) error {
			ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			return ovsconf.SetOtherConfig(ctx, db, map[string]string{"certificate": p.Cert, "private_key": p.Key, "ca_cert": p.CA}, n.log)
		},
	})
}

// status is the Enroller's status, or why there is none yet.
func (n *enrollment) status() enroll.Status {
	n.mu.Lock()
	e, waiting := n.e, n.waiting
	n.mu.Unlock()
	if e != nil {
		return e.Status()
	}
	return enroll.Status{Server: n.cfg.enroll, State: "starting", Detail: waiting, Paths: enroll.PathsIn(n.cfg.enrollDir)}
}

func (s *system) registerEnrollCommands() {
	s.ctl.Register("ca/status", 0, 1, "[--format=text|json]", s.cmdCAStatus)
	s.ctl.Register("ca/renew", 0, 0, "", s.cmdCARenew)
}

const enrollOff = "automatic certificates are off: start ovnsecd with --enroll=https://HOST:PORT (docs/PKI.md)\n"

func (s *system) cmdCAStatus(_ context.Context, args []string) (string, error) {
	format := "text"
	if len(args) == 1 {
		f, ok := strings.CutPrefix(args[0], "--format=")
		if !ok || (f != "text" && f != "json") {
			return "", fmt.Errorf("unrecognized parameter %q: use --format=text or --format=json", args[0])
		}
		format = f
	}
	if s.enroll == nil {
		if format == "json" {
			return `{"state": "off"}` + "\n", nil
		}
		return enrollOff, nil
	}
	st := s.enroll.status()
	if format == "json" {
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return "", fmt.Errorf("ca/status: %w", err)
		}
		return string(b) + "\n", nil
	}
	return st.Text(s.clock.Now()), nil
}

func (s *system) cmdCARenew(context.Context, []string) (string, error) {
	if s.enroll == nil {
		return enrollOff, nil
	}
	s.enroll.mu.Lock()
	e := s.enroll.e
	s.enroll.mu.Unlock()
	if e == nil {
		return "", fmt.Errorf("automatic certificates are starting (%s); try again", s.enroll.status().Detail)
	}
	e.RenewNow()
	return "renewal asked for; see ca/status\n", nil
}
