"""The publisher through the host's avahi-daemon, which a Debian server
with avahi already runs as its one mDNS responder (two responders on one
host would fight over the host name).  It speaks the daemon's D-Bus API
through avahi's own client library (avahi_client): one entry group per
service, on the interfaces that hold upsd's addresses, registered under
the daemon's host name; a new TXT record is announced in place; freeing
the client, or the process ending however it ends, withdraws everything
(the daemon sends the goodbyes)."""

import logging
import shutil
import subprocess

from infrapower.errors import InfrapowerError
from infrapower.publish import avahi_client
from infrapower.publish.avahi_client import IF_UNSPEC, PROTO_INET, PROTO_INET6, PROTO_UNSPEC

log = logging.getLogger(__name__)

REGISTER_TIMEOUT = 15.0  # probing takes ~1 s; a loaded host, more


def daemon_running():
    """Whether an avahi-daemon runs here (`avahi-daemon --check`: its PID
    file names a live process)."""
    if not shutil.which("avahi-daemon"):
        return False
    try:
        return subprocess.run(["avahi-daemon", "--check"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def placements(addresses):
    """[(interface index, protocol)] to publish a service for upsd's
    addresses: the interfaces that hold them, or everywhere when one is
    not on this host any more (--upsd takes only this host's addresses,
    and a wildcard LISTEN the ones it has at start)."""
    from infrapower.publish.listen import interface_indexes

    indexes = interface_indexes()
    if not addresses or any(address not in indexes for address in addresses):
        return [(IF_UNSPEC, PROTO_UNSPEC)]
    return sorted({(indexes[address], PROTO_INET if address.version == 4 else PROTO_INET6) for address in addresses})


class AvahiPublisher:
    kind = "avahi-daemon"

    def __init__(self, addresses):
        self.lib = avahi_client.AvahiLibrary()
        self.connection = None
        self.groups = {}  # (type, name, port) -> avahi_client.Group
        self._connect()

    def _connect(self):
        connection = avahi_client.Connection(self.lib)
        if not connection.wait_running(REGISTER_TIMEOUT):
            connection.close()
            raise InfrapowerError(f"avahi-daemon did not reach its running state within {REGISTER_TIMEOUT:g} s")
        self.connection = connection
        self.host_name = connection.host_name() or "?"

    def alive(self):
        return (self.connection is not None and self.connection.running()
                and all(group.alive() for group in self.groups.values()))

    def publish(self, services):
        """Register what is new, update the TXT of what changed, withdraw
        what went; after a daemon restart everything is registered again.
        Returns the names the daemon established."""
        if self.connection is None or not self.connection.running():
            self._drop_connection()
            self._connect()
        wanted = {(service.type, service.name, service.port): service for service in services}
        for key in list(self.groups):
            if key not in wanted or not self.groups[key].alive():
                self.groups.pop(key).free()
        # New services are committed together and probed by the daemon at
        # the same time (one probing delay, not one per service).
        new = {}
        try:
            for key, service in wanted.items():
                if key not in self.groups:
                    new[key] = avahi_client.Group(self.connection, service, placements(service.addresses))
                    new[key].commit()
            for group in new.values():
                group.settle(REGISTER_TIMEOUT)
        except InfrapowerError:
            for group in new.values():
                group.free()
            raise
        self.groups.update(new)
        for key, service in wanted.items():
            if key not in new and self.groups[key].service.txt != service.txt:
                self.groups[key].update_txt(service)
        return [self.groups[key].name for key in wanted]

    def withdraw(self):
        for group in self.groups.values():
            group.free()
        self.groups.clear()

    def _drop_connection(self):
        self.groups.clear()  # the daemon dropped them with the connection
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def close(self):
        if self.connection is not None:
            self.withdraw()
            self._drop_connection()

