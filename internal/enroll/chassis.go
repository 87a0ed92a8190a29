// Stage: the Southbound check (--sb-db). A chassis may enrol only if OVN
// knows it: a Chassis row with its name, and (unless told otherwise) a
// request from one of that chassis' Encap IPs. The lookup reads the
// Southbound database and never writes it: two select operations per
// request, on a connection kept between requests.

package enroll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovnsec/ovnsec/internal/ovnsb"
	"github.com/ovnsec/ovnsec/internal/ovnsb/sbdb"
)

// Chassis is what the Southbound database says of one chassis.
type Chassis struct {
	Name     string
	EncapIPs []netip.Addr
}

// ErrUnknownChassis is returned when the Southbound database has no
// Chassis of that name.
var ErrUnknownChassis = errors.New("no Chassis of that name in the OVN Southbound database")

// ChassisLookup finds a chassis by name.
type ChassisLookup interface {
	LookupChassis(ctx context.Context, name string) (Chassis, error)
}

// OVNRunDir is where a relative unix: Southbound remote is resolved.
const OVNRunDir = "/var/run/ovn"

// SBChassis looks chassis up in an OVN Southbound database.
type SBChassis struct {
	endpoints []string
	log       *slog.Logger

	mu sync.Mutex
	cl client.Client
}

// NewSBChassis checks remote (tcp:HOST:PORT or unix:PATH, several
// separated by commas; ssl: is not supported yet) and returns a lookup
// that connects on first use. A nil logger discards logs.
func NewSBChassis(remote string, logger *slog.Logger) (*SBChassis, error) {
	if err := ovnsb.CheckRemote(remote, OVNRunDir); err != nil {
		return nil, fmt.Errorf("--sb-db: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &SBChassis{log: logger}
	for _, r := range strings.FieldsFunc(remote, func(c rune) bool { return strings.ContainsRune(", \t\r\n", c) }) {
		if strings.HasPrefix(r, "cid:") {
			continue
		}
		if p, ok := strings.CutPrefix(r, "unix:"); ok && !filepath.IsAbs(p) {
			r = "unix:" + filepath.Join(OVNRunDir, p)
		}
		s.endpoints = append(s.endpoints, r)
	}
	return s, nil
}

// Close ends the connection.
func (s *SBChassis) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl != nil {
		s.cl.Close()
		s.cl = nil
	}
}

func (s *SBChassis) connect(ctx context.Context) (client.Client, error) {
	if s.cl != nil && s.cl.Connected() {
		return s.cl, nil
	}
	if s.cl != nil {
		s.cl.Close()
		s.cl = nil
	}
	dbModel, err := model.NewClientDBModel("OVN_Southbound", map[string]model.Model{
		sbdb.ChassisTable: &sbdb.Chassis{},
		sbdb.EncapTable:   &sbdb.Encap{},
	})
	if err != nil {
		return nil, fmt.Errorf("build OVN_Southbound client model: %w", err)
	}
	lg := logr.FromSlogHandler(s.log.Handler()).WithValues("component", "libovsdb")
	opts := []client.Option{client.WithLogger(&lg), client.WithLeaderOnly(false)}
	for _, e := range s.endpoints {
		opts = append(opts, client.WithEndpoint(e))
	}
	cl, err := client.NewOVSDBClient(dbModel, opts...)
	if err != nil {
		return nil, fmt.Errorf("create ovsdb client: %w", err)
	}
	if err := cl.Connect(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("connect to the OVN Southbound database %v: %w", s.endpoints, err)
	}
	s.cl = cl
	return cl, nil
}

// LookupChassis returns the chassis called name and its Encap IPs, or an
// error wrapping ErrUnknownChassis, or another error when the database
// cannot be read (the caller refuses the request then: fail closed).
func (s *SBChassis) LookupChassis(ctx context.Context, name string) (Chassis, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, err := s.connect(ctx)
	if err != nil {
		return Chassis{}, err
	}
	res, err := s.transact(ctx, cl, ovsdb.Operation{
		Op: ovsdb.OperationSelect, Table: sbdb.ChassisTable,
		Where:   []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: name}},
		Columns: []string{"name", "encaps"},
	})
	if err != nil {
		return Chassis{}, err
	}
	if len(res[0].Rows) == 0 {
		return Chassis{}, fmt.Errorf("chassis %q: %w", name, ErrUnknownChassis)
	}
	var ops []ovsdb.Operation
	for _, u := range uuidsOf(res[0].Rows[0]["encaps"]) {
		ops = append(ops, ovsdb.Operation{
			Op: ovsdb.OperationSelect, Table: sbdb.EncapTable,
			Where:   []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: u}}},
			Columns: []string{"ip"},
		})
	}
	ch := Chassis{Name: name}
	if len(ops) == 0 {
		return ch, nil
	}
	res, err = s.transact(ctx, cl, ops...)
	if err != nil {
		return Chassis{}, err
	}
	for _, r := range res {
		for _, row := range r.Rows {
			ip, _ := row["ip"].(string)
			a, err := netip.ParseAddr(ip)
			if err != nil {
				s.log.Warn("Southbound Encap ip is not an address; ignored", "chassis", name, "ip", ip)
				continue
			}
			ch.EncapIPs = append(ch.EncapIPs, a.Unmap())
		}
	}
	return ch, nil
}

// transact runs ops and checks every result; a failed connection is
// dropped so the next lookup connects again.
func (s *SBChassis) transact(ctx context.Context, cl client.Client, ops ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	res, err := cl.Transact(ctx, ops...)
	if err == nil && len(res) < len(ops) {
		err = fmt.Errorf("%d results for %d operations", len(res), len(ops))
	}
	if err == nil {
		for _, r := range res {
			if r.Error != "" {
				err = fmt.Errorf("%s: %s", r.Error, r.Details)
				break
			}
		}
	}
	if err != nil {
		cl.Close()
		s.cl = nil
		return nil, fmt.Errorf("read the OVN Southbound database: %w", err)
	}
	return res, nil
}

// uuidsOf reads a set of UUIDs as libovsdb decodes it: one ovsdb.UUID, or
// an ovsdb.OvsSet of them.
func uuidsOf(v any) []string {
	switch x := v.(type) {
	case ovsdb.UUID:
		return []string{x.GoUUID}
	case ovsdb.OvsSet:
		var out []string
		for _, e := range x.GoSet {
			if u, ok := e.(ovsdb.UUID); ok {
				out = append(out, u.GoUUID)
			}
		}
		return out
	}
	return nil
}
