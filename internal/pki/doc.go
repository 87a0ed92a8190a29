// Package pki is an ovs-pki compatible public key infrastructure: the CA
// directory layout ovs-pki writes (switchca, controllerca, their
// bookkeeping), key and request generation, signing with ovs-pki's
// defaults (and SubjectAltName DNS = CN, which OVN's IPsec needs), and the
// checks `ovnsec pki check` runs on a chassis certificate (chain, expiry,
// key match, CN and SAN, key usage) with an error that names the fix.
package pki
