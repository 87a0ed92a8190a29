// Package sbdb holds the libovsdb models of the OVN_Southbound schema,
// generated from the schema Debian's ovn-common ships (see
// internal/ovnsb/gen.go for the command). ovnsecd reads only SB_Global's
// ipsec column. Do not edit the generated files.
package sbdb
