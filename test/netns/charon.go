// Charon: a private strongSwan charon inside a test namespace, with its own
// /run (charon's pid file is hard-wired to /run/charon.pid), strongswan.conf,
// VICI socket and log file.

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

// CharonBin is Debian's charon.
const CharonBin = "/usr/lib/ipsec/charon"

// Charon is one charon process bound to a Host.
type Charon struct {
	t      testing.TB
	host   *Host
	Dir    string
	Socket string // VICI URI, unix://...
	Log    string // charon's log file
	cmd    *exec.Cmd
	exited chan struct{}
}

// CharonOptions tune the generated strongswan.conf.
type CharonOptions struct {
	// LibIPsec loads kernel-libipsec (userspace ESP over a TUN device;
	// tunnel mode only) instead of relying on kernel XFRM.
	LibIPsec bool
	// Config, when set, writes the whole strongswan.conf instead of the
	// default one; it gets the VICI socket URI and the log file path.
	Config func(socket, logFile string) string
}

// NewCharon writes a private configuration for a charon in h and starts it.
// It is killed when the test ends; its log is printed if the test failed.
func NewCharon(t testing.TB, h *Host, o CharonOptions) *Charon {
	t.Helper()
	testenv.NeedCommands(t, CharonBin, "swanctl", "unshare", "mount")
	dir, err := os.MkdirTemp("", "ovnsec-charon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &Charon{t: t, host: h, Dir: dir,
		Socket: "unix://" + filepath.Join(dir, "charon.vici"),
		Log:    filepath.Join(dir, "charon.log")}
	libipsec := "no"
	if o.LibIPsec {
		libipsec = "yes"
	}
	conf := fmt.Sprintf(`charon {
	load_modular = yes
	install_routes = no
	retransmit_tries = 3
	retransmit_timeout = 1.0
	plugins {
		include /etc/strongswan.d/charon/*.conf
		vici {
			socket = %s
		}
		kernel-netlink {
			set_proto_port_transport_sa = yes
			xfrm_ack_expires = 10
		}
		kernel-libipsec {
			load = %s
		}
		gcm {
			load = yes
		}
	}
	filelog {
		test {
			path = %s
			time_format = %%T
			ike_name = yes
			default = 1
			flush_line = yes
		}
	}
}
`, c.Socket, libipsec, c.Log)
	if o.Config != nil {
		conf = o.Config(c.Socket, c.Log)
	}
	if err := os.WriteFile(filepath.Join(dir, "strongswan.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop(syscall.SIGKILL)
		if t.Failed() {
			if b, err := os.ReadFile(c.Log); err == nil {
				t.Logf("charon log of %s (last lines):\n%s", h.Name, tail(string(b), 60))
			}
		}
	})
	c.Start()
	return c
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// SocketPath is the VICI socket's file path.
func (c *Charon) SocketPath() string { return strings.TrimPrefix(c.Socket, "unix://") }

// Start runs charon and waits until its VICI socket answers.
func (c *Charon) Start() {
	c.t.Helper()
	sock := c.SocketPath()
	_ = os.Remove(sock)
	script := fmt.Sprintf("mount -t tmpfs ovnsec-run /run && exec %s", CharonBin)
	c.cmd = exec.Command("ip", "netns", "exec", c.host.Name, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	c.cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(c.Dir, "strongswan.conf"))
	out, err := os.OpenFile(filepath.Join(c.Dir, "charon.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = out, out
	if err := c.cmd.Start(); err != nil {
		c.t.Fatalf("start charon in %s: %v", c.host.Name, err)
	}
	c.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}, f *os.File) {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}(c.cmd, c.exited, out)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			return
		}
		select {
		case <-c.exited:
			o, _ := os.ReadFile(filepath.Join(c.Dir, "charon.out"))
			c.t.Fatalf("charon in %s exited at start:\n%s", c.host.Name, o)
		case <-time.After(100 * time.Millisecond):
		}
	}
	c.t.Fatalf("charon in %s did not open %s within 15s", c.host.Name, sock)
}

// Stop signals charon and waits for it to exit.
func (c *Charon) Stop(sig syscall.Signal) {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// Swanctl runs swanctl against this charon and returns its output.
// SWANCTL_DIR is the charon's directory, so credentials a test writes into
// its x509, x509ca and private subdirectories are found by --load-all.
func (c *Charon) Swanctl(args ...string) (string, error) {
	args = append(args, "--uri", c.Socket)
	cmd := exec.Command("swanctl", args...)
	cmd.Env = append(os.Environ(), "SWANCTL_DIR="+c.Dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
