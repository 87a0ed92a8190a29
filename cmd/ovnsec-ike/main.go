// Command ovnsec-ike runs one IKEv2 engine against one peer, configured by
// flags or a JSON file, and prints Child SA events as JSON lines. It is
// the interop tool for ovnsec's IKE engine (internal/ike) and useful by
// hand:
//
//	(umask 077; printf '%s\n' "$PSK" >psk)
//	ovnsec-ike -local 203.0.113.1 -remote 203.0.113.2 -psk-file psk \
//	    -local-id a.example -remote-id b.example -mode tunnel \
//	    -local-ts 203.0.113.101/32 -remote-ts 203.0.113.102/32 -initiate
//
// The pre-shared key is read from a file (-psk-file, "-" for stdin) or
// from the -config file ("psk" or "psk_file"), never from the command
// line, where every local user could read it.
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ovnsec/ovnsec/internal/esp"
	"github.com/ovnsec/ovnsec/internal/ike"
)

// Config is the tool's configuration (flags or JSON, same names).
type Config struct {
	Local        string   `json:"local"`
	Remote       string   `json:"remote"`
	PortIKE      int      `json:"port_ike"`
	PortNATT     int      `json:"port_natt"`
	RemotePort   int      `json:"remote_port_ike"`
	RemoteNATT   int      `json:"remote_port_natt"`
	PSK          string   `json:"psk"`
	PSKFile      string   `json:"psk_file"`
	Cert         string   `json:"cert"`
	Key          string   `json:"key"`
	CA           string   `json:"ca"`
	PeerCert     string   `json:"peer_cert"`
	LocalID      string   `json:"local_id"`
	RemoteID     string   `json:"remote_id"`
	Mode         string   `json:"mode"`
	LocalTS      []string `json:"local_ts"`
	RemoteTS     []string `json:"remote_ts"`
	Proposals    []string `json:"proposals"`
	ESPProposals []string `json:"esp_proposals"`
	ForceEncap   bool     `json:"force_encap"`
	Initiate     bool     `json:"initiate"`
	DPD          string   `json:"dpd"`
	Debug        bool     `json:"debug"`
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ovnsec-ike:", err)
		os.Exit(1)
	}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, strings.Split(s, ",")...); return nil }

// parseArgs reads flags, then the JSON file if -config is given (JSON
// fields override flags), then the PSK file if one is named ("-" reads
// stdin). A PSK on the command line is refused.
func parseArgs(args []string, stdin io.Reader, stderr io.Writer) (Config, error) {
	var c Config
	var lts, rts, props, esps listFlag
	var file, argvPSK string
	fs := flag.NewFlagSet("ovnsec-ike", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&file, "config", "", "JSON configuration file (same names as the flags, with _ for -)")
	fs.StringVar(&c.Local, "local", "", "local address")
	fs.StringVar(&c.Remote, "remote", "", "peer address")
	fs.IntVar(&c.PortIKE, "port-ike", 500, "local IKE port")
	fs.IntVar(&c.PortNATT, "port-natt", 4500, "local NAT-T port")
	fs.IntVar(&c.RemotePort, "remote-port-ike", 500, "peer IKE port")
	fs.IntVar(&c.RemoteNATT, "remote-port-natt", 4500, "peer NAT-T port")
	fs.StringVar(&argvPSK, "psk", "", "refused: a key on the command line is visible to every local user; use -psk-file")
	fs.StringVar(&c.PSKFile, "psk-file", "", "file holding the pre-shared key (\"-\": read it from stdin); trailing newlines are ignored")
	fs.StringVar(&c.Cert, "cert", "", "PEM certificate (chain) file")
	fs.StringVar(&c.Key, "key", "", "PEM private key file")
	fs.StringVar(&c.CA, "ca", "", "PEM CA certificate(s) for the peer")
	fs.StringVar(&c.PeerCert, "peer-cert", "", "PEM pinned peer certificate")
	fs.StringVar(&c.LocalID, "local-id", "", "our FQDN identity")
	fs.StringVar(&c.RemoteID, "remote-id", "", "the peer's FQDN identity")
	fs.StringVar(&c.Mode, "mode", "transport", "transport or tunnel")
	fs.Var(&lts, "local-ts", "local traffic selector prefixes (comma separated)")
	fs.Var(&rts, "remote-ts", "remote traffic selector prefixes (comma separated)")
	fs.Var(&props, "proposals", "IKE proposals, e.g. aes256gcm16-prfsha256-modp2048")
	fs.Var(&esps, "esp-proposals", "ESP proposals, e.g. aes256gcm16")
	fs.BoolVar(&c.ForceEncap, "encap", false, "force UDP encapsulation")
	fs.BoolVar(&c.Initiate, "initiate", false, "initiate the IKE SA")
	fs.StringVar(&c.DPD, "dpd", "30s", "liveness check interval (0 to disable)")
	fs.BoolVar(&c.Debug, "debug", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	refused := false
	fs.Visit(func(f *flag.Flag) { refused = refused || f.Name == "psk" })
	if refused {
		return c, errors.New("-psk: a pre-shared key on the command line is visible to every local user (/proc/PID/cmdline, ps) and in shell history; write it to a file only you can read (chmod 600) and pass -psk-file FILE, or pass -psk-file - and give it on stdin, or put \"psk\" in the -config file")
	}
	c.LocalTS, c.RemoteTS, c.Proposals, c.ESPProposals = lts, rts, props, esps
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return c, fmt.Errorf("read config %s: %w", file, err)
		}
		fi, statErr := f.Stat()
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return c, fmt.Errorf("read config %s: %w", file, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("parse config %s: %w", file, err)
		}
		if c.PSK != "" && statErr == nil { // only the file can set psk
			warnMode(stderr, "config file (it holds the psk)", file, fi.Mode())
		}
	}
	if c.PSK != "" && c.PSKFile != "" {
		return c, errors.New("both psk (in the -config file) and psk_file (or -psk-file) are set; give the pre-shared key one way")
	}
	if c.PSKFile != "" {
		b, err := readSecretFile(c.PSKFile, "PSK file", stdin, stderr)
		if err != nil {
			return c, err
		}
		psk, err := parsePSK(b)
		if err != nil {
			clear(b)
			return c, fmt.Errorf("PSK file %s: %w", c.PSKFile, err)
		}
		c.PSK = string(psk)
		clear(b)
	}
	return c, nil
}

// peer turns the configuration into an engine Config and Peer; warnings
// (a private key file others may read) go to w.
func (c Config) peer(w io.Writer) (ike.Config, ike.Peer, error) {
	var ec ike.Config
	var p ike.Peer
	local, err := netip.ParseAddr(c.Local)
	if err != nil {
		return ec, p, fmt.Errorf("-local %q: %w", c.Local, err)
	}
	remote, err := netip.ParseAddr(c.Remote)
	if err != nil {
		return ec, p, fmt.Errorf("-remote %q: %w", c.Remote, err)
	}
	ec = ike.Config{Local: local, PortIKE: c.PortIKE, PortNATT: c.PortNATT}
	mode := esp.Transport
	switch c.Mode {
	case "", "transport":
	case "tunnel":
		mode = esp.Tunnel
	default:
		return ec, p, fmt.Errorf("-mode %q: use transport or tunnel", c.Mode)
	}
	child := ike.ChildConfig{Name: "child", Mode: mode}
	for _, pair := range []struct {
		in  []string
		out *[]ike.TrafficSelector
	}{{c.LocalTS, &child.LocalTS}, {c.RemoteTS, &child.RemoteTS}} {
		for _, s := range pair.in {
			pfx, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				return ec, p, fmt.Errorf("traffic selector %q: %w", s, err)
			}
			*pair.out = append(*pair.out, ike.PrefixTS(pfx, 0))
		}
	}
	p = ike.Peer{
		Name: "peer", Local: local, Remote: remote,
		RemotePortIKE: uint16(c.RemotePort), RemotePortNATT: uint16(c.RemoteNATT),
		LocalID: c.LocalID, RemoteID: c.RemoteID, Children: []ike.ChildConfig{child},
		IKEProposals: c.Proposals, ESPProposals: c.ESPProposals,
		ForceEncap: c.ForceEncap, Initiate: c.Initiate,
	}
	if c.DPD != "" {
		d, err := time.ParseDuration(c.DPD)
		if err != nil {
			return ec, p, fmt.Errorf("-dpd %q: %w", c.DPD, err)
		}
		p.DPDInterval = d
		if d == 0 {
			p.DPDInterval = -1
		}
	}
	switch {
	case c.PSK != "":
		p.Auth.PSK = []byte(c.PSK)
	case c.Cert != "":
		if fi, err := os.Stat(c.Key); err == nil {
			warnMode(w, "private key", c.Key, fi.Mode())
		}
		certs, err := readCerts(c.Cert)
		if err != nil {
			return ec, p, err
		}
		key, err := readKey(c.Key)
		if err != nil {
			return ec, p, err
		}
		p.Auth.Cert, p.Auth.Key = certs, key
		if c.CA != "" {
			if p.Auth.CAs, err = readCerts(c.CA); err != nil {
				return ec, p, err
			}
		}
		if c.PeerCert != "" {
			pc, err := readCerts(c.PeerCert)
			if err != nil {
				return ec, p, err
			}
			p.Auth.PeerCert = pc[0]
		}
	default:
		return ec, p, errors.New("set -psk-file (or psk in the -config file) or -cert/-key with -ca or -peer-cert")
	}
	return ec, p, nil
}

func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate %s: %w", path, err)
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate in %s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM CERTIFICATE in %s", path)
	}
	return out, nil
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key %s: %w", path, err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("no RSA, EC or PKCS#8 private key in %s", path)
		}
		var k any
		switch blk.Type {
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse private key %s: %w", path, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("private key %s of type %T cannot sign", path, k)
		}
		return s, nil
	}
}

// eventLine is what the tool prints per Child SA event (no key material).
type eventLine struct {
	Time     time.Time `json:"time"`
	Event    string    `json:"event"`
	Child    string    `json:"child"`
	Mode     string    `json:"mode"`
	InSPI    string    `json:"in_spi"`
	OutSPI   string    `json:"out_spi"`
	Replaces string    `json:"replaces,omitempty"`
	Local    string    `json:"local"`
	Remote   string    `json:"remote"`
	Encap    string    `json:"encap"`
	LocalTS  []string  `json:"local_ts"`
	RemoteTS []string  `json:"remote_ts"`
}

type printer struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (p *printer) HandleChildSA(ev ike.ChildEvent, sa ike.ChildSA) {
	l := eventLine{Time: sa.Established, Event: ev.String(), Child: sa.Name, Mode: sa.Mode.String(),
		InSPI: sa.InSPI.String(), OutSPI: sa.OutSPI.String(), Local: sa.Local.String(), Remote: sa.Remote.String(), Encap: sa.Encap.String()}
	if ev == ike.ChildDeleted {
		l.Time = time.Now()
	}
	if sa.Replaces != 0 {
		l.Replaces = sa.Replaces.String()
	}
	for _, t := range sa.LocalTS {
		l.LocalTS = append(l.LocalTS, t.String())
	}
	for _, t := range sa.RemoteTS {
		l.RemoteTS = append(l.RemoteTS, t.String())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.enc.Encode(l)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c, err := parseArgs(args, stdin, stderr)
	if err != nil {
		return err
	}
	ec, p, err := c.peer(stderr)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if c.Debug {
		level = slog.LevelDebug
	}
	ec.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ec.Handler = &printer{enc: json.NewEncoder(stdout)}
	e, err := ike.New(ec)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := e.AddPeer(p); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		last := ""
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				st := e.Status("peer")
				if s := st.State.String() + " " + st.Reason; s != last {
					ec.Logger.Info("status", "state", st.State, "reason", st.Reason, "alg", st.Algorithms, "encap", st.Encap)
					last = s
				}
			}
		}
	}()
	return e.Run(ctx)
}
