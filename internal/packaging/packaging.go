// Package packaging builds ovnsec's Debian package with nfpm, used as a
// library: packaging/nfpm.yaml names the contents (ovnsecd and ovnsec, the
// systemd units of deploy/systemd, the /etc/default files and maintainer
// scripts of packaging/), BuildBinaries builds the two static binaries and
// Build writes the .deb. `make deb` (packaging/mkdeb) and the install test
// (test/packaging) both go through here, so they package the same way.
package packaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
)

// ConfigPath is the nfpm configuration, relative to the repository root.
const ConfigPath = "packaging/nfpm.yaml"

// Binaries are the programs the package ships, built from ./cmd/<name>.
func Binaries() []string { return []string{"ovnsecd", "ovnsec"} }

// Options say what to package and where to write it.
type Options struct {
	// Root is the repository root; relative paths in the configuration
	// are relative to it.
	Root string
	// Config is the nfpm configuration (default Root/ConfigPath).
	Config string
	// BinDir holds the built Binaries().
	BinDir string
	// Version is the version ovnsecd reports, a semantic version such as
	// 0.1.0 or 0.1.0-dev (packaged as 0.1.0~dev, which sorts before 0.1.0).
	Version string
	// Arch is the Go architecture of the binaries (default runtime.GOARCH).
	Arch string
	// OutDir receives the .deb.
	OutDir string
	// MTime is the modification time of the packaged files (default:
	// SOURCE_DATE_EPOCH if set, else now).
	MTime time.Time
}

// semver is what Options.Version must look like: nfpm splits it into the
// Debian version, pre-release after "~", metadata after "+".
var semver = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.]+)?$`)

// Build writes the Debian package described by the configuration into
// o.OutDir and returns its path.
func Build(o Options) (string, error) {
	if o.Root == "" {
		return "", errors.New("packaging: no repository root given")
	}
	if !semver.MatchString(o.Version) {
		return "", fmt.Errorf("packaging: version %q is not a semantic version such as 0.1.0 or 0.1.0-dev; give one (make deb VERSION=...)", o.Version)
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	if o.Config == "" {
		o.Config = filepath.Join(o.Root, ConfigPath)
	}
	for _, b := range Binaries() {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return "", fmt.Errorf("packaging: binary %s: %w (build it first, see BuildBinaries)", b, err)
		}
	}
	vars := map[string]string{"OVNSEC_VERSION": o.Version, "OVNSEC_ARCH": o.Arch, "OVNSEC_BIN": o.BinDir}
	cfg, err := nfpm.ParseFileWithEnvMapping(o.Config, func(name string) string { return vars[name] })
	if err != nil {
		return "", fmt.Errorf("packaging: read %s: %w", o.Config, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", fmt.Errorf("packaging: %s: %w", o.Config, err)
	}
	resolvePaths(info, o.Root)
	if !o.MTime.IsZero() {
		info.MTime = o.MTime
	}
	if err := nfpm.Validate(info); err != nil {
		return "", fmt.Errorf("packaging: %s: %w", o.Config, err)
	}
	packager := deb.Default
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", fmt.Errorf("packaging: output directory: %w", err)
	}
	path := filepath.Join(o.OutDir, packager.ConventionalFileName(info))
	tmp, err := os.CreateTemp(o.OutDir, ".ovnsec-*.deb")
	if err != nil {
		return "", fmt.Errorf("packaging: output file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if err := packager.Package(info, tmp); err != nil {
		tmp.Close()
		return "", fmt.Errorf("packaging: build %s: %w", filepath.Base(path), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", fmt.Errorf("packaging: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("packaging: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("packaging: %w", err)
	}
	return path, nil
}

// resolvePaths makes the configuration's relative source and script paths
// relative to root instead of the process's working directory.
func resolvePaths(info *nfpm.Info, root string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	for _, c := range info.Contents {
		if c.Type != "symlink" {
			c.Source = abs(c.Source)
		}
	}
	s := &info.Scripts
	s.PreInstall, s.PostInstall = abs(s.PreInstall), abs(s.PostInstall)
	s.PreRemove, s.PostRemove = abs(s.PreRemove), abs(s.PostRemove)
}

// BuildBinaries builds the packaged Binaries() for linux/arch into outDir:
// static (CGO_ENABLED=0, the package then needs no libc version), with
// -trimpath, and with ovnsecd's version set to version unless it is empty.
func BuildBinaries(ctx context.Context, root, outDir, version, arch string) error {
	if arch == "" {
		arch = runtime.GOARCH
	}
	args := []string{"build", "-trimpath"}
	if version != "" {
		if !semver.MatchString(version) {
			return fmt.Errorf("packaging: version %q is not a semantic version such as 0.1.0 or 0.1.0-dev", version)
		}
		args = append(args, "-ldflags=-X main.version="+version)
	}
	args = append(args, "-o", outDir+string(filepath.Separator))
	for _, b := range Binaries() {
		args = append(args, "./cmd/"+b)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("packaging: go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// BinaryVersion runs ovnsecd --version and returns the version it prints
// ("ovnsecd 0.1.0-dev" gives "0.1.0-dev"), the package's version when none
// is given. The binary must be for this machine.
func BinaryVersion(ctx context.Context, ovnsecd string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, ovnsecd, "--version")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("packaging: %s --version: %w: %s", ovnsecd, err, strings.TrimSpace(out.String()))
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "ovnsecd ")
	if !ok || v == "" || strings.ContainsAny(v, " \n") {
		return "", fmt.Errorf("packaging: %s --version printed %q, want \"ovnsecd VERSION\"", ovnsecd, out.String())
	}
	return v, nil
}
