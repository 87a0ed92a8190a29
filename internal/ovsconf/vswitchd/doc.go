// Package vswitchd holds the libovsdb models of the Open_vSwitch database
// schema, generated from the schema Debian's openvswitch-common ships (see
// internal/ovsconf/gen.go for the command). Do not edit the generated
// files.
package vswitchd
