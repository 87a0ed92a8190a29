// Command mkdeb builds ovnsec's Debian package: static ovnsecd and ovnsec,
// the systemd units and the default configuration, with nfpm (through
// internal/packaging). `make deb` runs it from the repository root:
//
//	go run ./packaging/mkdeb [-version 0.1.0] [-arch amd64] [-out bin]
//
// It lives here rather than under cmd/ so that `make build` (go build
// ./cmd/...) neither links nfpm nor puts a packaging tool among the
// product's binaries.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/ovnsec/ovnsec/internal/packaging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "", "version to build in and package, a semantic version such as 0.1.0 (default: the version ovnsecd reports)")
	arch := fs.String("arch", runtime.GOARCH, "Go architecture to build for (another one needs -version)")
	out := fs.String("out", "bin", "directory that receives the .deb")
	root := fs.String("root", ".", "repository root")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "mkdeb: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *version == "" && *arch != runtime.GOARCH {
		fmt.Fprintf(stderr, "mkdeb: -arch %s needs -version: ovnsecd built for another architecture cannot be asked for its version here\n", *arch)
		return 2
	}
	path, err := build(ctx, *root, *out, *version, *arch)
	if err != nil {
		fmt.Fprintf(stderr, "mkdeb: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, path)
	return 0
}

func build(ctx context.Context, root, out, version, arch string) (string, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	bin, err := os.MkdirTemp("", "ovnsec-deb-bin-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(bin)
	if err := packaging.BuildBinaries(ctx, root, bin, version, arch); err != nil {
		return "", err
	}
	if version == "" {
		if version, err = packaging.BinaryVersion(ctx, filepath.Join(bin, "ovnsecd")); err != nil {
			return "", err
		}
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	return packaging.Build(packaging.Options{Root: root, BinDir: bin, Version: version, Arch: arch, OutDir: out})
}
