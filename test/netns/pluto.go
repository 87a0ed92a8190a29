// Pluto: a private libreswan pluto inside a test namespace. Debian's
// libreswan conflicts with strongSwan, so scripts/install-deps.sh unpacks
// it into a private prefix (LibreswanRoot); pluto runs in a private mount
// namespace where that prefix's /usr/libexec/ipsec and /usr/sbin/ipsec are
// bind-mounted (pluto execs addconn at a fixed path). Commands reach it
// through a wrapper that runs the prefix's ipsec inside the namespace.

package netns

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

// LibreswanRoot is where scripts/install-deps.sh unpacks libreswan
// (OVNSEC_LIBRESWAN_ROOT, default /opt/ovnsec-libreswan).
func LibreswanRoot() string {
	if r := os.Getenv("OVNSEC_LIBRESWAN_ROOT"); r != "" {
		return r
	}
	return "/opt/ovnsec-libreswan"
}

// NeedLibreswan skips (fails under CI=true) unless the unpacked libreswan
// and the NSS tools are there.
func NeedLibreswan(t testing.TB) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommands(t, "certutil", "pk12util", "openssl", "unshare", "mount", "ip")
	if _, err := os.Stat(filepath.Join(LibreswanRoot(), "usr/libexec/ipsec/pluto")); err != nil {
		testenv.Missing(t, "libreswan unpacked into %s (run scripts/install-deps.sh)", LibreswanRoot())
	}
}

// Pluto is one pluto bound to a Host.
type Pluto struct {
	t    testing.TB
	host *Host
	Dir  string
	// Conf is the file pluto reads at start (--config); Secrets, NSS
	// (directory), Ctl and Log are its other paths. IPsec is the wrapper
	// that runs libreswan's ipsec command inside the host's namespace.
	Conf, Secrets, NSS, Ctl, Log, IPsec string
	cmd                                 *exec.Cmd
	exited                              chan struct{}
}

// PlutoOptions tune the files pluto starts with.
type PlutoOptions struct {
	// RootConf, when set, is written as Conf (ipsec.conf) and ovnsecd is
	// to write SubConf, which RootConf includes; otherwise Conf is left
	// for ovnsecd to write.
	RootConf func(sub string) string
}

// SubConf is the file a RootConf includes.
func (p *Pluto) SubConf() string { return filepath.Join(p.Dir, "ovn.conf") }

// NewPluto creates an empty NSS database and starts pluto in h. It is
// killed when the test ends; its log is printed if the test failed.
func NewPluto(t testing.TB, h *Host, o PlutoOptions) *Pluto {
	t.Helper()
	NeedLibreswan(t)
	dir, err := os.MkdirTemp("", "ovnsec-pluto-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &Pluto{t: t, host: h, Dir: dir,
		Conf: filepath.Join(dir, "ipsec.conf"), Secrets: filepath.Join(dir, "ipsec.secrets"),
		NSS: filepath.Join(dir, "nss"), Ctl: filepath.Join(dir, "run", "pluto.ctl"),
		Log: filepath.Join(dir, "pluto.log"), IPsec: filepath.Join(dir, "ipsec")}
	root := LibreswanRoot()
	wrapper := fmt.Sprintf("#!/bin/sh\nexport IPSEC_EXECDIR=%s/usr/libexec/ipsec IPSEC_SBINDIR=%s/usr/sbin\nexec ip netns exec %s %s/usr/sbin/ipsec \"$@\"\n", root, root, h.Name, root)
	must(t, os.WriteFile(p.IPsec, []byte(wrapper), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "run"), 0o755))
	must(t, os.MkdirAll(p.NSS, 0o700))
	if out, err := exec.Command("certutil", "-N", "-d", "sql:"+p.NSS, "--empty-password").CombinedOutput(); err != nil {
		t.Fatalf("certutil -N: %v\n%s", err, out)
	}
	conf := "# empty until ovnsecd writes it\n"
	if o.RootConf != nil {
		conf = o.RootConf(p.SubConf())
		must(t, os.WriteFile(p.SubConf(), []byte("# empty until ovnsecd writes it\n"), 0o644))
	}
	must(t, os.WriteFile(p.Conf, []byte(conf), 0o644))
	must(t, os.WriteFile(p.Secrets, nil, 0o600))
	t.Cleanup(func() {
		p.Stop(syscall.SIGKILL)
		if t.Failed() {
			if b, err := os.ReadFile(p.Log); err == nil {
				t.Logf("pluto log of %s (last lines):\n%s", h.Name, tail(string(b), 80))
			}
		}
	})
	p.Start()
	return p
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Start runs pluto and waits until its control socket answers.
func (p *Pluto) Start() {
	p.t.Helper()
	_ = os.Remove(p.Ctl)
	root := LibreswanRoot()
	script := fmt.Sprintf("mount -t tmpfs ovnsec-lsw /usr/libexec && mkdir /usr/libexec/ipsec && "+
		"mount --bind %s/usr/libexec/ipsec /usr/libexec/ipsec && mount --bind %s/usr/sbin/ipsec /usr/sbin/ipsec && "+
		"exec /usr/libexec/ipsec/pluto --nofork --config %s --ipsecdir %s --nssdir %s --logfile %s --secretsfile %s --rundir %s",
		root, root, p.Conf, p.Dir, p.NSS, p.Log, p.Secrets, filepath.Dir(p.Ctl))
	p.cmd = exec.Command("ip", "netns", "exec", p.host.Name, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	out, err := os.OpenFile(filepath.Join(p.Dir, "pluto.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start pluto in %s: %v", p.host.Name, err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}, f *os.File) {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}(p.cmd, p.exited, out)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.Dial("unix", p.Ctl); err == nil {
			conn.Close()
			return
		}
		select {
		case <-p.exited:
			o, _ := os.ReadFile(filepath.Join(p.Dir, "pluto.out"))
			p.t.Fatalf("pluto in %s exited at start:\n%s", p.host.Name, o)
		case <-time.After(100 * time.Millisecond):
		}
	}
	p.t.Fatalf("pluto in %s did not open %s within 15s", p.host.Name, p.Ctl)
}

// Stop signals pluto and waits for it to exit.
func (p *Pluto) Stop(sig syscall.Signal) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Ipsec runs libreswan's ipsec command against this pluto.
func (p *Pluto) Ipsec(args ...string) (string, error) {
	// Through sh, not exec of the wrapper itself: a parallel test forking
	// while another writes its wrapper would make exec fail with ETXTBSY.
	out, err := exec.Command("sh", append([]string{p.IPsec}, args...)...).CombinedOutput()
	return string(out), err
}

// Status is `ipsec status` of this pluto (or why it did not answer).
func (p *Pluto) Status() string {
	out, err := p.Ipsec("status", "--ctlsocket", p.Ctl)
	if err != nil {
		return fmt.Sprintf("ipsec status: %v\n%s", err, out)
	}
	return out
}

// NSSNicknames lists the nicknames in pluto's NSS database.
func (p *Pluto) NSSNicknames() []string {
	out, err := exec.Command("certutil", "-L", "-d", "sql:"+p.NSS).CombinedOutput()
	if err != nil {
		p.t.Fatalf("certutil -L: %v\n%s", err, out)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[0], "ovs_") {
			names = append(names, f[0])
		}
	}
	return names
}

// DaemonArgs are ovnsecd's libreswan flags for this pluto.
func (p *Pluto) DaemonArgs() []string {
	return []string{"--ike-daemon=libreswan", "--ipsec-command=" + p.IPsec, "--ipsec-conf=" + p.Conf,
		"--ipsec-secrets=" + p.Secrets, "--ipsec-d=" + p.NSS, "--ipsec-ctl=" + p.Ctl, "--pluto-log=" + p.Log}
}
