// Command ovnsec is the ovnsec operator CLI. Each subcommand lives in its
// own file and registers itself in commands(); `pki` (ovs-pki compatible
// PKI management and certificate checks) is the first.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// stdio is what a subcommand may touch of the process: its streams and the
// directory relative names are resolved in ("" means the process's
// current directory). Tests set dir instead of changing directory.
type stdio struct {
	in       io.Reader
	out, err io.Writer
	dir      string
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, s stdio, args []string) int
}

// commands lists the subcommands. To add one (e.g. `show`), write
// show.go with a runShow function and add a line here.
func commands() []command {
	return []command{
		{"pki", "manage an ovs-pki compatible PKI and check certificates", runPKI},
		{"ca", "serve the CA over EST; bootstrap tokens for chassis", runCA},
	}
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the exit code.
func run(ctx context.Context, s stdio, args []string) int {
	if len(args) == 0 {
		usage(s.err)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(s.out)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, s, args[1:])
		}
	}
	fmt.Fprintf(s.err, "ovnsec: unknown command %q; run 'ovnsec help' for the list\n", args[0])
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ovnsec COMMAND [ARG...]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'ovnsec COMMAND --help' for a command's usage.")
}
