"""The built-in publisher: python-zeroconf as this host's mDNS responder,
for a host where no avahi-daemon runs (a minimal server, a container).
It answers for `<host name>.local` itself, with the addresses upsd listens
on; zeroconf is imported here only (PyPI zeroconf, Debian python3-zeroconf)."""

import logging
import socket

from infrapower.errors import InfrapowerError

log = logging.getLogger(__name__)


def local_host_name():
    """This host's name as one DNS label (the first of an FQDN)."""
    return socket.gethostname().split(".")[0] or "localhost"


class ResponderPublisher:
    """Services registered with python-zeroconf; update() changes a TXT
    record in place (an announcement, no withdrawal); close() sends the
    goodbye packets (TTL 0) for every one."""

    kind = "python-zeroconf"

    def __init__(self, addresses):
        try:
            from zeroconf import IPVersion, Zeroconf
        except ImportError:
            raise InfrapowerError("python-zeroconf is not installed: install it (Debian: python3-zeroconf), "
                                  "or run avahi-daemon") from None
        self.host = local_host_name()
        if self.host.lower() in ("localhost", "localhost6"):
            # What NUT's own avahi file publishes (NUT issue 2231): a client
            # resolving it reaches itself, never this upsd.
            raise InfrapowerError("this host is named localhost: give it a name clients can resolve "
                                  "(hostnamectl set-hostname NAME), then publish")
        versions = {address.version for address in addresses}
        ip_version = IPVersion.All if versions == {4, 6} else IPVersion.V6Only if versions == {6} else IPVersion.V4Only
        # IPv4 addresses name their interfaces: answer only where upsd listens.
        interfaces = [str(address) for address in addresses] if versions == {4} else None
        try:
            self.zeroconf = Zeroconf(ip_version=ip_version, **({"interfaces": interfaces} if interfaces else {}))
        except OSError as error:
            raise InfrapowerError(f"cannot open the mDNS socket (UDP 5353): {error.strerror or error}") from None
        self.registered = {}  # (type, name, port) -> the ServiceInfo as registered (its name may have changed)

    @property
    def host_name(self):
        return f"{self.host}.local"

    def _info(self, service, name=None):
        from zeroconf import ServiceInfo

        full_type = f"{service.type}.local."
        return ServiceInfo(full_type, name or f"{service.name}.{full_type}", port=service.port,
                           properties=dict(service.txt), server=f"{self.host}.local.",
                           addresses=[address.packed for address in service.addresses])

    def publish(self, services):
        """Register what is new, update the TXT of what is there; returns
        the names as registered (a conflict gets a new name)."""
        from concurrent.futures import ThreadPoolExecutor

        from zeroconf import Error as ZeroconfError

        def one(service):
            key = (service.type, service.name, service.port)
            try:
                if key in self.registered:
                    info = self._info(service, self.registered[key].name)
                    self.zeroconf.update_service(info)
                else:
                    info = self._info(service)
                    self.zeroconf.register_service(info, allow_name_change=True)
            except (ZeroconfError, OSError) as error:
                raise InfrapowerError(f"python-zeroconf could not publish {service.type}: {error}") from None
            return key, info

        # Each call blocks through probing and three announcements (~1.2 s):
        # side by side, every service is out after one of them.
        with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
            done = list(pool.map(one, services))
        names = []
        for (key, info), service in zip(done, services):
            self.registered[key] = info
            names.append(info.name.removesuffix(f".{service.type}.local."))
        return names

    def withdraw(self):
        """Goodbye packets for every service; the responder stays open."""
        if self.registered:
            self.zeroconf.unregister_all_services()
            self.registered.clear()

    def close(self):
        try:
            self.withdraw()
        finally:
            self.zeroconf.close()
