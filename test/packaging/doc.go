// Package packaging holds the tests of what ships: the Debian package
// installed with dpkg on this machine (units accepted by systemd-analyze,
// the installed ovnsecd runs), and the container recipe and DaemonSet of
// deploy/, read and checked against each other and against ovnsecd.
package packaging
