// Package ovsconf watches the local Open_vSwitch database with libovsdb
// (generated models of the real schema in ovsconf/vswitchd) and turns every
// update into a tunnel.Snapshot: the Open_vSwitch row's other_config and
// external_ids and every Interface's name, type, options, ofport and
// cfm_fault, exactly what ovs-monitor-ipsec reads. It reconnects with
// back-off and is the only package after which nothing depends on OVSDB
// types.
package ovsconf
