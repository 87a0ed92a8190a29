// Package nsenter runs a function inside another network namespace: on an
// OS thread of its own, switched into the namespace and back, so that the
// sockets, devices and netlink handles the function creates belong to
// that namespace and the rest of the process is untouched.
package nsenter

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Path is the file of the network namespace ns: ns itself if it contains
// a '/', else the named namespace under /run/netns (ip netns).
func Path(ns string) string {
	if ns == "" || strings.Contains(ns, "/") {
		return ns
	}
	return filepath.Join("/run/netns", ns)
}

// Do runs fn in the network namespace ns (a name under /run/netns or a
// path such as /proc/<pid>/ns/net); "" runs fn on the calling goroutine.
// If switching back fails the thread is left locked and discarded by the
// runtime rather than reused in the wrong namespace.
func Do(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- doLocked(Path(ns), fn)
	}()
	return <-done
}

func doLocked(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open network namespace %s (does it exist? ip netns list): %w", path, err)
	}
	defer target.Close()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("return from network namespace %s: %w", path, err) // thread stays locked and dies
	}
	runtime.UnlockOSThread()
	return ferr
}
