// Package est tests the EST CA service the way a client nobody here wrote
// sees it: the built `ovnsec` binary serves on 127.0.0.1, and only curl
// and openssl talk to it. Nothing in the product imports it.
package est
