# A unixctl server built on python-ovs, the library the real
# ovs-monitor-ipsec uses; appctl_test.go compares ours with it.
# Usage: pyserver.py <socket path>; runs until killed.
import sys

import ovs.poller
import ovs.unixctl
import ovs.unixctl.server
import ovs.util


def echo(conn, argv, unused_aux):
    conn.reply("|".join(argv))


def status(conn, unused_argv, unused_aux):
    conn.reply("{}")


def fail(conn, argv, unused_aux):
    conn.reply_error("unrecognized parameter: %s" % argv[0])


ovs.util.PROGRAM_NAME = "ovs-monitor-ipsec"
ovs.unixctl.command_register("echo", "[ARG...]", 0, 4, echo, None)
ovs.unixctl.command_register("ipsec/status", "", 0, 0, status, None)
ovs.unixctl.command_register("exit", "[--no-cleanup]", 1, 1, fail, None)
error, server = ovs.unixctl.server.UnixctlServer.create(sys.argv[1],
                                                        version="9.9.9")
if error:
    sys.exit("cannot create %s: %s" % (sys.argv[1], error))
print("ready", flush=True)
while True:
    server.run()
    poller = ovs.poller.Poller()
    server.wait(poller)
    poller.block()
