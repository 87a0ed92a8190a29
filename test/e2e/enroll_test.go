// Automatic certificates end to end, on the demo cluster: the EST CA
// service (ovnsec ca serve) in ovd-central with a 2-minute certificate
// lifetime, every ovnsecd started with --enroll and a bootstrap token, no
// hand-made chassis certificate. ipsec=true brings every tunnel up; then,
// under 10 ms pings vm1 -> vm2 for 5 minutes, the chassis renew several
// times, the CA rolls over and every chassis renews under the new CA and
// drops the old one, with no ping lost, no plaintext on the underlay and
// the IKE SAs of before still in place (same SPIs: their own rekey is
// hours away). The CA service is stopped once the rollover is done, so
// the certificates expire meanwhile; a chassis whose certificate has
// expired says why in tunnels/show and ca/status, and after a restart
// (new IKE SAs needed) its tunnels fail closed: no SA, no plaintext. New
// tokens and the CA back bring every tunnel up again.
package e2e

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/backend"
	"github.com/ovnsec/ovnsec/internal/enroll"
	"github.com/ovnsec/ovnsec/internal/pki"
	"github.com/ovnsec/ovnsec/internal/testenv"
)

// enrollState is the demo's state directory for this test.
const enrollState = "/tmp/ovnsec-enroll-demo"

// enrollEnv is the demo cluster with its CA service.
type enrollEnv struct {
	*leakEnv
	caDir      string
	caArgs     []string
	caPidfile  string
	caLog      string
	enrollDirs []string
	ovnsec     string // bin/ovnsec
	// newCA is the CA the rollover made; caDown when the service stopped.
	newCA, oldCA *x509.Certificate
}

func (x *enrollEnv) caStatus(i int) (enroll.Status, error) {
	out, err := demoRun(10*time.Second, "ovs-appctl", "--timeout=5", "-t", x.ctl(i), "ca/status", "--format=json")
	if err != nil {
		return enroll.Status{}, fmt.Errorf("%s: %w", x.chassis[i], err)
	}
	var st enroll.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("%s ca/status: %w\n%s", x.chassis[i], err, out)
	}
	return st, nil
}

func (x *enrollEnv) caStatusText(i int) string {
	out, _ := demoRun(10*time.Second, "ovs-appctl", "--timeout=5", "-t", x.ctl(i), "ca/status")
	return out
}

// bundle reads chassis i's CA bundle.
func (x *enrollEnv) bundle(i int) ([]*x509.Certificate, error) {
	return pki.LoadCertificates(enroll.PathsIn(x.enrollDirs[i]).CA)
}

// stopCA stops the CA service.
func (x *enrollEnv) stopCA(t *testing.T) {
	t.Helper()
	p, err := readLeakProc(x.caPidfile, "ovnsec", x.vars["CENTRAL_NS"])
	if err != nil {
		t.Fatal(err)
	}
	if err := p.kill(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// startCA starts the CA service again as scripts/demo.sh did; the demo's
// teardown stops it through the pidfile.
func (x *enrollEnv) startCA(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(x.caLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", x.vars["CENTRAL_NS"], x.ovnsec}, x.caArgs...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	if err := os.WriteFile(x.caPidfile, []byte(fmt.Sprintf("%d\n", cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	demoEventually(t, 10*time.Second, "the CA service listens again", func() error {
		b, _ := os.ReadFile(x.caLog)
		if !strings.Contains(string(b[max(0, len(b)-4000):]), "EST CA service listening") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
}

// newToken writes a new one-time token for chassis i where its ovnsecd
// reads it.
func (x *enrollEnv) newToken(t *testing.T, i int) {
	t.Helper()
	out, err := exec.Command(x.ovnsec, "ca", "token", "create", "--dir", x.caDir, "--chassis", x.chassis[i], "--ttl", "1h").Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	if err := os.WriteFile(filepath.Join(x.rundir(i), "enroll-token"), out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEnroll(t *testing.T) {
	ovnPrereqs(t)
	if why := demoProbeNative(t); why != "" {
		testenv.Missing(t, "native backend in ovnsecd (%s)", why)
	}
	t.Setenv("DEMO_STATE", enrollState)
	t.Setenv("DEMO_CA_LIFETIME", "2m")
	start := time.Now()
	e := demoUp(t)
	if e.backend != "native" {
		t.Fatalf("scripts/demo.sh started ovnsecd with %q, not native", e.backend)
	}
	for _, k := range []string{"CA_DIR", "CA_SERVE_ARGS", "CA_PIDFILE", "CA_LOG", "ENROLL_DIRS", "CENTRAL_NS"} {
		if e.vars[k] == "" {
			t.Fatalf("the demo environment lacks %s", k)
		}
	}
	t.Logf("demo up in %.1f s", time.Since(start).Seconds())
	x := &enrollEnv{
		leakEnv: &leakEnv{demoEnv: e, cap: startLeakCapture(t, e.underlayNS)},
		caDir:   e.vars["CA_DIR"], caArgs: strings.Fields(e.vars["CA_SERVE_ARGS"]), caPidfile: e.vars["CA_PIDFILE"],
		caLog: e.vars["CA_LOG"], enrollDirs: strings.Fields(e.vars["ENROLL_DIRS"]),
		ovnsec: filepath.Join(demoRepoRoot(), "bin", "ovnsec"),
	}
	if len(x.enrollDirs) != len(e.chassis) {
		t.Fatalf("ENROLL_DIRS %q: want one per chassis", e.vars["ENROLL_DIRS"])
	}
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("OVNSEC_KEEP_LOGS") != "1" {
			return
		}
		dir := filepath.Join(os.TempDir(), "ovnsec-enroll-logs")
		os.RemoveAll(dir)
		for i, ch := range x.chassis {
			os.MkdirAll(filepath.Join(dir, ch), 0o755)
			for _, f := range []string{"ovnsecd.log", "ovnsecd.out"} {
				if b, err := os.ReadFile(filepath.Join(x.rundir(i), f)); err == nil {
					os.WriteFile(filepath.Join(dir, ch, f), b, 0o644)
				}
			}
		}
		if b, err := os.ReadFile(x.caLog); err == nil {
			os.WriteFile(filepath.Join(dir, "ca.log"), b, 0o644)
		}
		t.Logf("daemon logs kept in %s", dir)
	})
	t.Run("enrolled-ipsec-up", x.enrolledIPsecUp)
	if t.Failed() {
		return
	}
	t.Run("renewals-and-rollover-under-traffic", x.renewalsAndRollover)
	if t.Failed() {
		return
	}
	t.Run("expiry-while-ca-down", x.expiryWhileCADown)
	t.Logf("enrolment test: %.1f s in all", time.Since(start).Seconds())
}

// enrolledIPsecUp: every chassis enrolled at start (a token, its own
// name, the served CA; other_config names the enrolled files; nothing
// made by hand), and ipsec=true brings every tunnel up.
func (x *enrollEnv) enrolledIPsecUp(t *testing.T) {
	if _, err := os.Stat(filepath.Join(x.vars["DEMO_STATE"], "certs")); err == nil {
		t.Errorf("the demo made chassis certificates by hand (%s/certs)", x.vars["DEMO_STATE"])
	}
	ca := caCertificate(t, x.caDir)
	caLog, _ := os.ReadFile(x.caLog)
	for i, ch := range x.chassis {
		st, err := x.caStatus(i)
		if err != nil {
			t.Fatal(err)
		}
		p := enroll.PathsIn(x.enrollDirs[i])
		if st.State != "enrolled" || st.Chassis != ch || st.InUse != p || st.Certificate == nil || st.Certificate.Issuer != ca.Subject.String() ||
			!strings.Contains(st.Certificate.Subject, "CN="+ch) {
			t.Errorf("%s: ca/status %+v", ch, st)
			continue
		}
		oc, err := demoRun(10*time.Second, "ovs-vsctl", "--timeout=5", "--db="+x.ovsDBs[i], "get", "Open_vSwitch", ".", "other_config")
		if err != nil || !strings.Contains(oc, `certificate="`+p.Cert+`"`) || !strings.Contains(oc, `ca_cert="`+p.CA+`"`) || !strings.Contains(oc, `private_key="`+p.Key+`"`) {
			t.Errorf("%s: other_config %s (%v) does not name the enrolled files", ch, oc, err)
		}
		if !regexp.MustCompile(`msg="certificate issued" op=simpleenroll chassis=` + ch + ` auth=token`).Match(caLog) {
			t.Errorf("the CA service did not log %s's enrolment with a token", ch)
		}
		t.Logf("%s: %s, issuer %s, not after %s, next renewal %s", ch, st.Certificate.Subject, st.Certificate.Issuer,
			st.Certificate.NotAfter.Format(time.RFC3339), st.NextRenewal.Format(time.RFC3339))
	}
	x.nbctl(t, "set", "nb_global", ".", "ipsec=true")
	demoEventually(t, 30*time.Second, "ipsec=true on every chassis", func() error { return x.ipsecOn(t) })
	demoEventually(t, 60*time.Second, "every tunnel up", x.allUp)
	x.pingAll(t)
	x.ready, x.afterSwitch = true, time.Now()
}

func caCertificate(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	cas, err := pki.LoadCertificates(pki.Dir{Path: dir}.CACertPath(pki.SwitchCA))
	if err != nil {
		t.Fatal(err)
	}
	return cas[0]
}

// allSPIs is every IKE SA of every chassis, by chassis/tunnel, and every
// tunnel's version.
func (x *enrollEnv) allSPIs(t *testing.T) (spis map[string]string, versions map[string]int) {
	t.Helper()
	spis, versions = map[string]string{}, map[string]int{}
	for i := range x.chassis {
		s, err := x.show(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range s.Tunnels {
			versions[x.chassis[i]+"/"+tn.Name] = tn.Version
			if tn.IKE != nil {
				spis[x.chassis[i]+"/"+tn.Name] = tn.IKE.SPIi + "/" + tn.IKE.SPIr
			}
		}
	}
	return spis, versions
}

// renewalsAndRollover: 5 minutes of 10 ms pings vm1 -> vm2 while every
// chassis renews its 2-minute certificate, the CA rolls over (overlap 2
// minutes) 30 s in, and the service stops once every bundle holds only
// the new CA and every chassis has had three certificates.
func (x *enrollEnv) renewalsAndRollover(t *testing.T) {
	const (
		pings   = 30000 // 5 minutes at 10 ms
		overlap = "2m"
	)
	issued := map[int]int{}
	for i := range x.chassis {
		st, err := x.caStatus(i)
		if err != nil {
			t.Fatal(err)
		}
		issued[i] = st.Issued
	}
	spis, versions := x.allSPIs(t)
	if len(spis) != len(x.chassis)*(len(x.chassis)-1) {
		t.Fatalf("IKE SAs before the traffic: %v", spis)
	}
	x.oldCA = caCertificate(t, x.caDir)
	from := time.Now()
	ping := startLeakPingN(t, x.vmNS[0], x.vmIPs[1], "vm1->vm2", pings)
	time.Sleep(30 * time.Second)
	out, err := demoRun(30*time.Second, x.ovnsec, "ca", "rollover", "--dir", x.caDir, "--overlap", overlap)
	if err != nil {
		t.Fatal(err)
	}
	rolled := time.Now()
	t.Logf("ovnsec ca rollover at %s:\n%s", leakStamp(rolled), out)
	x.newCA = caCertificate(t, x.caDir)
	if x.newCA.Equal(x.oldCA) {
		t.Fatal("the rollover did not change the CA")
	}
	// Every chassis trusts both CAs, then renews under the new one.
	demoEventually(t, 90*time.Second, "every chassis renewed under the new CA, trusting both", func() error {
		for i, ch := range x.chassis {
			st, err := x.caStatus(i)
			if err != nil {
				return err
			}
			if st.Certificate == nil || st.Certificate.Issuer != x.newCA.Subject.String() {
				return fmt.Errorf("%s: certificate still from %v", ch, st.Certificate)
			}
			b, err := x.bundle(i)
			if err != nil {
				return err
			}
			if len(b) != 2 && time.Since(rolled) < 2*time.Minute {
				return fmt.Errorf("%s: bundle of %d CAs during the overlap", ch, len(b))
			}
		}
		return nil
	})
	t.Logf("every chassis renewed under the new CA %.1f s after the rollover", time.Since(rolled).Seconds())
	// The old CA retires: it leaves every bundle.
	demoEventually(t, 3*time.Minute, "the old CA in no bundle", func() error {
		for i, ch := range x.chassis {
			b, err := x.bundle(i)
			if err != nil {
				return err
			}
			if len(b) != 1 || !b[0].Equal(x.newCA) {
				return fmt.Errorf("%s: bundle of %d CAs", ch, len(b))
			}
		}
		return nil
	})
	t.Logf("the old CA left every bundle %.1f s after the rollover", time.Since(rolled).Seconds())
	// Several renewals on every chassis, then the service stops (the
	// next phase needs the certificates to expire).
	demoEventually(t, 4*time.Minute, "three certificates issued to every chassis during the traffic", func() error {
		for i, ch := range x.chassis {
			st, err := x.caStatus(i)
			if err != nil {
				return err
			}
			if n := st.Issued - issued[i]; n < 3 {
				return fmt.Errorf("%s: %d", ch, n)
			}
		}
		return nil
	})
	t.Logf("stopping the CA service %.1f s into the traffic", time.Since(from).Seconds())
	x.stopCA(t)
	r := ping.wait(7 * time.Minute)
	to := time.Now()
	t.Logf("vm1->vm2 during renewals, rollover and the CA's stop: %v (the longest gap ended at %s)", r, leakStamp(r.gapEnd))
	if r.sent < pings || r.lost() != 0 {
		t.Errorf("vm1->vm2: %v; want %d sent, none lost", r, pings)
	}
	x.noLeak(t, "renewals and CA rollover under traffic", from, to)
	for i, ch := range x.chassis {
		st, err := x.caStatus(i)
		if err != nil {
			t.Fatal(err)
		}
		n := st.Issued - issued[i]
		t.Logf("%s: %d certificates during the traffic; now %s from %s until %s", ch, n, st.Certificate.Subject, st.Certificate.Issuer, st.Certificate.NotAfter.Format(time.RFC3339))
		if n < 3 {
			t.Errorf("%s: %d certificates issued during 5 minutes of 2-minute certificates and a rollover, want several (3 or more)", ch, n)
		}
		if st.Certificate.Issuer != x.newCA.Subject.String() {
			t.Errorf("%s: certificate from %s, not the new CA", ch, st.Certificate.Issuer)
		}
		b, err := x.bundle(i)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(b, x.oldCA.Equal) {
			t.Errorf("%s: the old CA is still in %s", ch, enroll.PathsIn(x.enrollDirs[i]).CA)
		}
	}
	after, afterVersions := x.allSPIs(t)
	for k, v := range spis {
		if after[k] != v {
			t.Errorf("%s: IKE SA %s before the renewals, %s after: an IKE SA was negotiated again before its own rekey", k, v, after[k])
		}
	}
	for k, v := range versions {
		if afterVersions[k] != v {
			t.Errorf("%s: version %d before the renewals, %d after", k, v, afterVersions[k])
		}
	}
}

// expiryWhileCADown: the CA service is down and the certificates have
// expired. The chassis says so (ca/status: the expiry and why no renewal
// came; tunnels/show: the expired certificate); established SAs carry on
// until new ones are needed: after a restart of its ovnsecd (kill -9, no
// SAs saved) the chassis' tunnels fail closed (no SA can be made with an
// expired certificate, nothing in clear). New tokens and the service back
// bring everything up again.
func (x *enrollEnv) expiryWhileCADown(t *testing.T) {
	const victim = 2
	ch := x.chassis[victim]
	var st enroll.Status
	demoEventually(t, 3*time.Minute, ch+"'s certificate expired and said so", func() error {
		var err error
		st, err = x.caStatus(victim)
		if err != nil {
			return err
		}
		if st.State != "failing" || !strings.Contains(st.Detail, "expired at") {
			return fmt.Errorf("ca/status %s: %s", st.State, st.Detail)
		}
		return nil
	})
	if !strings.Contains(st.LastError, "is the CA service running and reachable?") {
		t.Errorf("ca/status does not say the CA service is unreachable: %q", st.LastError)
	}
	text := x.caStatusText(victim)
	t.Logf("%s ca/status with the CA down and the certificate expired:\n%s", ch, text)
	if !strings.Contains(text, "EXPIRED") || !strings.Contains(text, "Last error:") {
		t.Errorf("ca/status text does not show the expiry and the error:\n%s", text)
	}
	expiredProblem := func() error {
		s, err := x.show(victim)
		if err != nil {
			return err
		}
		for _, tn := range s.Tunnels {
			if !slices.ContainsFunc(tn.Problems, func(p string) bool { return strings.Contains(p, "expired at") }) {
				return fmt.Errorf("%s %s: problems %q", ch, tn.Name, tn.Problems)
			}
		}
		return nil
	}
	demoEventually(t, 20*time.Second, "tunnels/show names the expired certificate", expiredProblem)

	// New IKE SAs are needed: kill -9 (nothing saved) and start again.
	from := time.Now()
	p := x.proc(t, victim, "ovnsecd")
	if err := p.kill(syscall.SIGKILL, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	x.restartOvnsecd(t, victim, p)
	restarted := time.Now()
	demoEventually(t, 30*time.Second, ch+"'s tunnels down with a reason", func() error {
		s, err := x.show(victim)
		if err != nil {
			return err
		}
		if len(s.Tunnels) != len(x.chassis)-1 {
			return fmt.Errorf("%d tunnels", len(s.Tunnels))
		}
		for _, tn := range s.Tunnels {
			if tn.State == backend.StateUp || tn.Detail == "" || tn.IKE != nil && tn.IKE.State == "established" {
				return fmt.Errorf("%s %s: %s %s", ch, tn.Name, tn.State, tn.Detail)
			}
		}
		return expiredProblem()
	})
	ping := startLeakPingN(t, x.vmNS[0], x.vmIPs[victim], "vm1->vm3", 500)
	r := ping.wait(30 * time.Second)
	if got := r.repliesAfter(restarted.Add(time.Second)); got != 0 {
		t.Errorf("vm1->vm3 got %d replies through a chassis whose certificate expired: %v", got, r)
	}
	shown, _ := x.showText(victim)
	t.Logf("%s tunnels/show after the restart with an expired certificate:\n%s", ch, shown)
	if st, err := x.caStatus(victim); err != nil || st.State != "failing" || !strings.Contains(st.Detail, "expired at") {
		t.Errorf("ca/status after the restart: %+v, %v", st, err)
	}
	x.noLeak(t, "expired certificate, CA down, restarted chassis", from, time.Now())

	// Recovery: the CA back, a new token per chassis (the certificates
	// have expired, so renewals cannot authenticate), ca/renew.
	x.startCA(t)
	for i := range x.chassis {
		x.newToken(t, i)
		if _, err := demoRun(10*time.Second, "ovs-appctl", "--timeout=5", "-t", x.ctl(i), "ca/renew"); err != nil {
			t.Fatal(err)
		}
	}
	demoEventually(t, 60*time.Second, "every chassis enrolled again", func() error {
		for i, c := range x.chassis {
			st, err := x.caStatus(i)
			if err != nil {
				return err
			}
			if st.State != "enrolled" {
				return fmt.Errorf("%s: %s %s %s", c, st.State, st.Detail, st.LastError)
			}
		}
		return nil
	})
	demoEventually(t, 90*time.Second, "every tunnel up again", x.allUp)
	x.pingAll(t)
}
