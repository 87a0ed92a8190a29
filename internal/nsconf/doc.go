// Package nsconf turns the operator's north-south IPsec configuration into
// one typed, validated model: a Conn per connection, parsed once at the
// edge. It reads a directory (ovnsecd's --ns-conf-dir, DefaultDir):
//
//   - libreswan conn sections in *.conf files (conn NAME at column 0,
//     indented key=value lines, # comments, quoted values, conn %default
//     and also= within the directory, config setup ignored);
//   - pre-shared keys in libreswan *.secrets files (ID ID : PSK "..."),
//     matched to each authby=secret conn by its ids as libreswan does;
//   - nmstate's libreswan: block in *.yaml and *.yml files, as an nmstate
//     state or NodeNetworkConfigurationPolicy with interfaces of
//     type: ipsec, read into the same model.
//
// Unknown keys and bad values are refused with file:line and what to do;
// a refused connection does not keep the others from loading. Safety
// checks run on the whole set: a remote subnet that covers the gateway's
// or this host's own address needs a type=passthrough exclusion.
//
// A Loader reads the directory into a Snapshot: connections by name, each
// with a Hash that stays the same while the connection means the same,
// the connections skipped (auto=ignore) and the errors. A connection that
// becomes invalid or unreadable keeps its last valid version (fail closed:
// a typo never turns a protected subnet into a clear one); one removed
// from the files is removed. A Watcher re-reads the directory on its
// clock and on Refresh and delivers changed snapshots on a channel.
//
// docs/NORTH-SOUTH.md lists the accepted keys and values.
package nsconf
