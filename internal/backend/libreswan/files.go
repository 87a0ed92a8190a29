// Files: --ipsec-conf and --ipsec-secrets written whole from the tunnels
// the backend holds (as upstream rewrites them on every run), replaced
// atomically so that pluto never reads half a file, the secrets readable
// by root only.

package libreswan

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ovnsec/ovnsec/internal/tunnel"
)

// writeFiles renders and writes both files for ts (in name order) and the
// drop conns of mark, and records the conn names as owned. ops held.
func (b *Backend) writeFiles(ts []tunnel.Tunnel, mark string) error {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(x, y tunnel.Tunnel) int { return strings.Compare(x.Name, y.Name) })
	conf := renderConf(b.layout, mark, ts)
	if err := writeAtomic(b.cfg.Conf, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("write the libreswan configuration %s (--ipsec-conf): %w", b.cfg.Conf, err)
	}
	if err := writeAtomic(b.cfg.Secrets, []byte(renderSecrets(ts)), 0o600); err != nil {
		return fmt.Errorf("write the libreswan secrets %s (--ipsec-secrets): %w", b.cfg.Secrets, err)
	}
	b.mu.Lock()
	for _, c := range confConns(conf) {
		b.owned[c] = true
	}
	b.mu.Unlock()
	return nil
}

// writeAtomic replaces path with data through a temporary file in the
// same directory.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".ovnsec-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// confConns lists the conn names an ipsec.conf declares ("conn %default"
// excluded).
func confConns(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "conn" && !strings.HasPrefix(f[1], "%") && line[0] == 'c' {
			out = append(out, f[1])
		}
	}
	return out
}
