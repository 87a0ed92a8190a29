// Package creds is ovnsec's one reader of credential files: certificate
// chains, private keys and CA bundles in PEM, by path. A Store caches each
// file by path and content, checks that a key belongs to its certificate
// and that a chain verifies against a CA bundle, and tells its subscribers
// when a file it has read changes on disk (a stat poll on the store's
// clock), so that a certificate renewed under the same path reaches every
// backend without a restart and without tearing established SAs down.
package creds
