// Example: how a daemon (ovnsecd) wires unixctl up under its own name and
// the ovs-monitor-ipsec compatibility name.

package unixctl_test

import (
	"context"
	"fmt"
	"os"

	"github.com/ovnsec/ovnsec/internal/unixctl"
)

func Example() {
	rundir, _ := os.MkdirTemp("", "rundir") // in ovnsecd: unixctl.RunDir()
	defer os.RemoveAll(rundir)
	pid := os.Getpid()

	// One server, two sockets; a locked pidfile for each name so that
	// `ovs-appctl -t ovnsecd ...` and `ovs-appctl -t ovs-monitor-ipsec ...`
	// both find it.
	srv, err := unixctl.Listen(unixctl.CtlPath(rundir, "ovnsecd", pid), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.AddListener(unixctl.CtlPath(rundir, "ovs-monitor-ipsec", pid)); err != nil {
		fmt.Println(err)
		return
	}
	for _, name := range []string{"ovnsecd", "ovs-monitor-ipsec"} {
		pf, err := unixctl.WritePidfile(unixctl.PidfilePath(rundir, name))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer pf.Remove()
	}
	srv.SetVersion("ovnsecd (ovnsec) 0.1.0")
	srv.Register("ipsec/status", 0, 0, "", func(ctx context.Context, args []string) (string, error) {
		return "{}", nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	// What `ovnsec show` would do.
	c, err := unixctl.Dial(unixctl.CtlPath(rundir, "ovs-monitor-ipsec", pid))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	status, err := c.Call(ctx, "ipsec/status")
	fmt.Printf("%q %v\n", status, err)
	_, err = c.Call(ctx, "tunnels/show")
	fmt.Println(err)

	cancel()
	fmt.Println(<-done)
	// Output:
	// "{}\n" <nil>
	// "tunnels/show" is not a valid command (use "list-commands" to see a list of valid commands)
	// <nil>
}
