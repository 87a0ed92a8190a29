package main

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovnsec/ovnsec/internal/backend/native"
)

// storeSockets sends each socket in its own FDSTORE=1 message under its
// name, with the descriptor itself (the same open file, not a copy of its
// contents); without NOTIFY_SOCKET it sends nothing.
func TestStoreSockets(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	engine, err := os.CreateTemp(dir, "engine")
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	ike, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ike.Close()
	natt, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer natt.Close()
	log := slog.New(slog.DiscardHandler)

	t.Setenv("NOTIFY_SOCKET", "")
	if err := storeSockets(log, native.Sockets{Engine: engine, IKE: ike, NATT: natt}); err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v", err)
	}
	t.Setenv("NOTIFY_SOCKET", sock)
	if err := storeSockets(log, native.Sockets{Engine: engine, IKE: ike, NATT: natt}); err != nil {
		t.Fatal(err)
	}
	inode := func(fd int) uint64 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	want := map[string]uint64{}
	for name, rcFn := range map[string]func() (syscallConn, error){
		storeEngine: func() (syscallConn, error) { return engine.SyscallConn() },
		storeIKE:    func() (syscallConn, error) { return ike.SyscallConn() },
		storeNATT:   func() (syscallConn, error) { return natt.SyscallConn() },
	} {
		rc, err := rcFn()
		if err != nil {
			t.Fatal(err)
		}
		rc.Control(func(fd uintptr) { want[name] = inode(int(fd)) })
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf, oob := make([]byte, 512), make([]byte, 512)
	for range 3 {
		n, oobn, _, _, err := nc.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		msg := string(buf[:n])
		name, ok := strings.CutPrefix(msg, "FDSTORE=1\nFDNAME=")
		if !ok {
			t.Fatalf("message %q, want FDSTORE=1 and a name", msg)
		}
		cms, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(cms) != 1 {
			t.Fatalf("%s: control messages %v %v", name, cms, err)
		}
		fds, err := unix.ParseUnixRights(&cms[0])
		if err != nil || len(fds) != 1 {
			t.Fatalf("%s: descriptors %v %v", name, fds, err)
		}
		if got := inode(fds[0]); got != want[name] {
			t.Errorf("%s: stored descriptor is inode %d, want %d", name, got, want[name])
		}
		unix.Close(fds[0])
		delete(want, name)
	}
	if len(want) != 0 {
		t.Errorf("not stored: %v", want)
	}
}

// Descriptors passed to another process (LISTEN_PID not ours) are not
// taken.
func TestStoredSocketsNotOurs(t *testing.T) {
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDS", "1")
	t.Setenv("LISTEN_FDNAMES", storeEngine)
	s, err := storedSockets(slog.New(slog.DiscardHandler))
	if s != nil || err != nil {
		t.Fatalf("storedSockets = %v, %v; want nothing", s, err)
	}
}
