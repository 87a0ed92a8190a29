// NSS: the certificates pluto authenticates with live in an NSS database
// (--ipsec-d), under ovs-monitor-ipsec's nicknames: ovs_certkey_<CN> (the
// local certificate with its private key, imported as PKCS#12 with
// pk12util), ovs_cert_cacert (trust CT,,) and ovs_cert_<peer CN> (a pinned
// self-signed peer, trust P,P,P). Every import first compares what the
// database holds under the nickname with the file and removes what
// differs, one entry at a time, so that a certificate changed while
// ovnsecd was not running never leaves a stale or duplicate entry
// (upstream 83de251fa).

package libreswan

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// nssDB runs certutil, pk12util and openssl on one database.
type nssDB struct {
	dir string // the directory; the database is "sql:"+dir
	run Runner
	log *slog.Logger
}

func (n nssDB) db() string { return "sql:" + n.dir }

// nssTrust values, as upstream passes them to certutil -t.
const (
	trustCA   = "CT,,"
	trustPeer = "P,P,P"
)

// maxMismatches bounds the removals of one import: NSS may hold several
// certificates under one nickname, but not without end.
const maxMismatches = 16

// ready creates the database when its directory holds none (certutil -N
// with an empty password, as `ipsec initnss` does).
func (n nssDB) ready(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(n.dir, "cert9.db")); err == nil {
		return nil
	}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return fmt.Errorf("create the NSS database directory %s: %w", n.dir, err)
	}
	argv := []string{"certutil", "-N", "-d", n.db(), "--empty-password"}
	r, err := n.run.Run(ctx, argv)
	if err != nil || r.Code != 0 {
		return orCommandError(err, "create the NSS database "+n.db(), argv, r)
	}
	n.log.Info("created the NSS database", "db", n.db())
	return nil
}

func orCommandError(err error, desc string, argv []string, r Result) error {
	if err != nil {
		return fmt.Errorf("%s: %w", desc, err)
	}
	return commandError(desc, argv, r)
}

// list returns the nicknames in the database that start with prefix.
func (n nssDB) list(ctx context.Context, prefix string) ([]string, error) {
	argv := []string{"certutil", "-L", "-d", n.db()}
	r, err := n.run.Run(ctx, argv)
	if err != nil || r.Code != 0 {
		return nil, orCommandError(err, "list the NSS database "+n.db(), argv, r)
	}
	return parseNicknames(r.Stdout, prefix), nil
}

// parseNicknames reads `certutil -L` output: a header, then one line per
// certificate, its nickname first (ovs-monitor-ipsec's nicknames have no
// spaces) and its trust attributes last.
func parseNicknames(out, prefix string) []string {
	var names []string
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[0], prefix) || prefix == "" {
			continue
		}
		if !seen[f[0]] {
			seen[f[0]] = true
			names = append(names, f[0])
		}
	}
	return names
}

// get returns the DER of every certificate held under name (none when it
// is absent).
func (n nssDB) get(ctx context.Context, name string) ([][]byte, error) {
	argv := []string{"certutil", "-L", "-d", n.db(), "-a", "-n", name}
	r, err := n.run.Run(ctx, argv)
	if err != nil {
		return nil, fmt.Errorf("read %s from the NSS database: %w", name, err)
	}
	if r.Code != 0 {
		return nil, nil // not found
	}
	return pemCerts([]byte(r.Stdout)), nil
}

// pemCerts returns the DER of every CERTIFICATE block in data.
func pemCerts(data []byte) [][]byte {
	var out [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		if b.Type == "CERTIFICATE" {
			out = append(out, b.Bytes)
		}
	}
}

// remove deletes one entry: the certificate and its key for ovs_certkey_*
// (certutil -F), the certificate otherwise (certutil -D).
func (n nssDB) remove(ctx context.Context, name string) error {
	op := "-D"
	if strings.HasPrefix(name, certKeyPrefix) {
		op = "-F"
	}
	argv := []string{"certutil", op, "-d", n.db(), "-n", name}
	r, err := n.run.Run(ctx, argv)
	if err != nil || r.Code != 0 {
		return orCommandError(err, "delete "+name+" from the NSS database", argv, r)
	}
	return nil
}

// removeAll deletes every entry under name.
func (n nssDB) removeAll(ctx context.Context, name string) error {
	for range maxMismatches {
		have, err := n.get(ctx, name)
		if err != nil {
			return err
		}
		if len(have) == 0 {
			return nil
		}
		if err := n.remove(ctx, name); err != nil {
			return err
		}
	}
	return fmt.Errorf("NSS database %s still holds %s after %d removals", n.db(), name, maxMismatches)
}

// current removes what the database holds under name unless it is exactly
// cert, and reports whether cert is there afterwards.
func (n nssDB) current(ctx context.Context, name string, cert *x509.Certificate) (bool, error) {
	for range maxMismatches {
		have, err := n.get(ctx, name)
		if err != nil {
			return false, err
		}
		if len(have) == 0 {
			return false, nil
		}
		if len(have) == 1 && bytes.Equal(have[0], cert.Raw) {
			return true, nil
		}
		n.log.Info(fmt.Sprintf("Mismatched certificate %s in the NSS database, removing.", name))
		if err := n.remove(ctx, name); err != nil {
			return false, err
		}
	}
	return false, fmt.Errorf("NSS database %s still holds another %s after %d removals", n.db(), name, maxMismatches)
}

// importCert makes cert the one certificate under name, with trust.
func (n nssDB) importCert(ctx context.Context, name string, cert *x509.Certificate, trust string) error {
	ok, err := n.current(ctx, name, cert)
	if err != nil || ok {
		return err
	}
	dir, err := os.MkdirTemp("", "ovnsec-nss-")
	if err != nil {
		return fmt.Errorf("import %s into NSS: %w", name, err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		return fmt.Errorf("import %s into NSS: %w", name, err)
	}
	argv := []string{"certutil", "-A", "-a", "-i", file, "-d", n.db(), "-n", name, "-t", trust}
	r, err := n.run.Run(ctx, argv)
	if err != nil || r.Code != 0 {
		return orCommandError(err, "import certificate "+name+" into NSS", argv, r)
	}
	return nil
}

// importCertKey makes cert, with its private key, the one entry under
// name: a PKCS#12 file made by openssl (empty password) in a private
// directory, imported with pk12util and removed.
func (n nssDB) importCertKey(ctx context.Context, name string, cert *x509.Certificate, key crypto.Signer) error {
	ok, err := n.current(ctx, name, cert)
	if err != nil || ok {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("import %s into NSS: encode the private key: %w", name, err)
	}
	dir, err := os.MkdirTemp("", "ovnsec-nss-")
	if err != nil {
		return fmt.Errorf("import %s into NSS: %w", name, err)
	}
	defer os.RemoveAll(dir)
	certFile, keyFile, p12 := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, name+".p12")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		return fmt.Errorf("import %s into NSS: %w", name, err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("import %s into NSS: %w", name, err)
	}
	argv := []string{"openssl", "pkcs12", "-export", "-in", certFile, "-inkey", keyFile, "-out", p12, "-name", name, "-passout", "pass:"}
	r, err := n.run.Run(ctx, argv)
	if err != nil || r.Code != 0 {
		return orCommandError(err, "create p12 file from pem files for "+name, argv, r)
	}
	argv = []string{"pk12util", "-i", p12, "-d", n.db(), "-W", ""}
	r, err = n.run.Run(ctx, argv)
	if err != nil || r.Code != 0 {
		return orCommandError(err, "load the p12 file of "+name+" into the NSS database", argv, r)
	}
	return nil
}
