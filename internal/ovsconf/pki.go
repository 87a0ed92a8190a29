// PKI stage: the one write ovnsec makes to the local database. Automatic
// certificates (internal/enroll, run by ovnsecd --enroll) point
// Open_vSwitch other_config:certificate, private_key and ca_cert at the
// files they wrote, the step an operator otherwise does with ovs-vsctl;
// and they read the chassis name (external_ids:system-id) and the
// certificate in use. Each call opens its own short connection: these
// happen at start and when the files move, not per update.

package ovsconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovnsec/ovnsec/internal/ovsconf/vswitchd"
)

// OpenvSwitchRow is the part of the Open_vSwitch row automatic
// certificates read.
type OpenvSwitchRow struct {
	OtherConfig map[string]string
	ExternalIDs map[string]string
}

// connect opens a client of remote with the Open_vSwitch model.
func connect(ctx context.Context, remote string, log *slog.Logger) (client.Client, error) {
	endpoint, err := parseRemote(remote, false)
	if err != nil {
		return nil, err
	}
	dbModel, err := clientModel()
	if err != nil {
		return nil, fmt.Errorf("build Open_vSwitch client model: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lg := logr.FromSlogHandler(log.Handler()).WithValues("component", "libovsdb")
	cl, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(endpoint), client.WithLogger(&lg))
	if err != nil {
		return nil, fmt.Errorf("create ovsdb client for %s: %w", remote, err)
	}
	cctx, cancel := context.WithTimeout(ctx, DefaultConnectTimeout)
	defer cancel()
	if err := cl.Connect(cctx); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", remote, err)
	}
	return cl, nil
}

// ReadOpenvSwitch reads the Open_vSwitch row's other_config and
// external_ids.
func ReadOpenvSwitch(ctx context.Context, remote string, log *slog.Logger) (OpenvSwitchRow, error) {
	cl, err := connect(ctx, remote, log)
	if err != nil {
		return OpenvSwitchRow{}, err
	}
	defer cl.Close()
	ovs := &vswitchd.OpenvSwitch{}
	if _, err := cl.Monitor(ctx, cl.NewMonitor(client.WithTable(ovs, &ovs.OtherConfig, &ovs.ExternalIDs))); err != nil {
		return OpenvSwitchRow{}, fmt.Errorf("read Open_vSwitch at %s: %w", remote, err)
	}
	var rows []vswitchd.OpenvSwitch
	if err := cl.List(ctx, &rows); err != nil {
		return OpenvSwitchRow{}, fmt.Errorf("read Open_vSwitch at %s: %w", remote, err)
	}
	if len(rows) != 1 {
		return OpenvSwitchRow{}, fmt.Errorf("the Open_vSwitch table at %s has %d rows, want 1 (run ovs-vsctl init)", remote, len(rows))
	}
	return OpenvSwitchRow{OtherConfig: maps.Clone(rows[0].OtherConfig), ExternalIDs: maps.Clone(rows[0].ExternalIDs)}, nil
}

// SetOtherConfig sets the given other_config keys of the Open_vSwitch row
// in one transaction, leaving the other keys alone (as ovs-vsctl set
// Open_vSwitch . other_config:KEY=VALUE does).
func SetOtherConfig(ctx context.Context, remote string, kv map[string]string, log *slog.Logger) error {
	if len(kv) == 0 {
		return nil
	}
	for k, v := range kv {
		if k == "" || v == "" {
			return fmt.Errorf("other_config: empty key or value for %q", k)
		}
	}
	cl, err := connect(ctx, remote, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	ovs := &vswitchd.OpenvSwitch{}
	if _, err := cl.Monitor(ctx, cl.NewMonitor(client.WithTable(ovs, &ovs.OtherConfig))); err != nil {
		return fmt.Errorf("read Open_vSwitch at %s: %w", remote, err)
	}
	var rows []vswitchd.OpenvSwitch
	if err := cl.List(ctx, &rows); err != nil {
		return fmt.Errorf("read Open_vSwitch at %s: %w", remote, err)
	}
	if len(rows) != 1 {
		return fmt.Errorf("the Open_vSwitch table at %s has %d rows, want 1 (run ovs-vsctl init)", remote, len(rows))
	}
	row := &vswitchd.OpenvSwitch{UUID: rows[0].UUID}
	keys := slices.Sorted(maps.Keys(kv))
	ops, err := cl.Where(row).Mutate(row,
		model.Mutation{Field: &row.OtherConfig, Mutator: ovsdb.MutateOperationDelete, Value: keys},
		model.Mutation{Field: &row.OtherConfig, Mutator: ovsdb.MutateOperationInsert, Value: maps.Clone(kv)},
	)
	if err != nil {
		return fmt.Errorf("set other_config %v at %s: %w", keys, remote, err)
	}
	res, err := cl.Transact(ctx, ops...)
	if err != nil {
		return fmt.Errorf("set other_config %v at %s: %w", keys, remote, err)
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		return fmt.Errorf("set other_config %v at %s: %w", keys, remote, err)
	}
	if len(res) == 0 || res[0].Count != 1 {
		return errors.New("set other_config: the Open_vSwitch row went away meanwhile; try again")
	}
	return nil
}
