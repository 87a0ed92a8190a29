// Stage: storage. Writing PKI files safely: every output is written to a
// temporary file in the same directory and moved into place only when all
// contents are ready, existing files are never replaced without force, and a
// failed multi-file operation removes what it already created.

package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File modes used for everything ovnsec pki writes.
const (
	modeKey  fs.FileMode = 0o600 // private keys
	modeFile fs.FileMode = 0o644 // certificates, requests, bookkeeping
	modeDir  fs.FileMode = 0o700 // every directory we create
)

// ErrExists is wrapped by errors about an output file that already exists and
// may not be replaced because force was not given.
var ErrExists = errors.New("already exists and --force not given")

// output is one file an operation will write.
type output struct {
	path string
	data []byte
	mode fs.FileMode
	// replace allows overwriting an existing file even without force
	// (bookkeeping files such as index.txt and serial that are updated in
	// place by design).
	replace bool
}

// mustNotExist fails with ErrExists when path exists and force is false.
func mustNotExist(path string, force bool) error {
	if force {
		return nil
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s %w (remove it or pass --force)", path, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("check %s: %w", path, err)
	}
	return nil
}

// mustExist fails with a clear message when path does not exist.
func mustExist(path string) error {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist", path)
		}
		return fmt.Errorf("check %s: %w", path, err)
	}
	return nil
}

// writeAll writes every output or none of them: all preconditions are
// checked first, each file goes through a temporary file, and if a later
// file fails the ones already placed are restored (new files removed,
// replaced files put back).
func writeAll(outs []output, force bool) error {
	for _, o := range outs {
		if !o.replace {
			if err := mustNotExist(o.path, force); err != nil {
				return err
			}
		}
		if err := mustExist(filepath.Dir(o.path)); err != nil {
			return fmt.Errorf("write %s: directory %w", o.path, err)
		}
	}
	var undo []func()
	rollback := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	for _, o := range outs {
		u, err := place(o, force || o.replace)
		if err != nil {
			rollback()
			return err
		}
		undo = append(undo, u)
	}
	return nil
}

// place writes one output atomically and returns a function that undoes it.
func place(o output, overwrite bool) (undo func(), err error) {
	dir := filepath.Dir(o.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(o.path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", o.path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			os.Remove(tmpName)
		}
	}()
	if err = tmp.Chmod(o.mode); err == nil {
		if _, err = tmp.Write(o.data); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", o.path, err)
	}
	if !overwrite {
		// Link fails if the target appeared meanwhile: no clobbering
		// even under a race.
		if err = os.Link(tmpName, o.path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("%s %w (remove it or pass --force)", o.path, ErrExists)
			}
			return nil, fmt.Errorf("write %s: %w", o.path, err)
		}
		os.Remove(tmpName)
		return func() { os.Remove(o.path) }, nil
	}
	old, readErr := os.ReadFile(o.path)
	oldInfo, statErr := os.Lstat(o.path)
	if err = os.Rename(tmpName, o.path); err != nil {
		return nil, fmt.Errorf("write %s: %w", o.path, err)
	}
	if readErr != nil || statErr != nil {
		return func() { os.Remove(o.path) }, nil
	}
	return func() { _ = os.WriteFile(o.path, old, oldInfo.Mode().Perm()) }, nil
}

// readFile reads a file with an error that names it.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist", path)
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
