// Package e2e holds end-to-end tests: real ovsdb-server, ovs-vsctl,
// ovs-appctl, charon and ovnsecd processes in network namespaces.
package e2e
