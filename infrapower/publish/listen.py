"""Where upsd listens, and so what to publish: upsd.conf's LISTEN lines
(read with the pack's NUT configuration library) or --upsd HOST:PORT,
turned into the non-loopback addresses clients can reach, and the address
the publisher itself polls upsd on."""

import ipaddress
import json
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from infrapower.errors import ConfigError
from infrapower.ports import NUT_PORT

# NUT 2.8.0's upsd without any LISTEN line listens on localhost only.
DEFAULT_LISTEN = ("127.0.0.1", "::1")
WILDCARDS = {"0.0.0.0": 4, "::": 6, "*": 6}
RESOLVE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Endpoint:
    """One port upsd listens on: the addresses to publish for it and the
    address to poll it through (loopback for a wildcard: always there)."""

    port: int
    addresses: tuple  # ipaddress objects, non-loopback, in a stable order
    poll_host: str


def _interface_addresses():
    """[(address, interface index)] of this host (`ip -j addr`)."""
    try:
        output = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=10,
                                check=True).stdout
        interfaces = json.loads(output)
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        raise ConfigError(f"cannot list this host's addresses with `ip -j addr` ({error}): install iproute2") from None
    found = []
    for interface in interfaces:
        for info in interface.get("addr_info", ()):
            try:
                found.append((ipaddress.ip_address(info["local"]), int(interface["ifindex"])))
            except (KeyError, ValueError):
                continue
    return found


def host_addresses(family=None):
    """Every address configured on this host's interfaces, as ipaddress
    objects; `family` 4 or 6 keeps one family."""
    return [address for address, _ in _interface_addresses() if family is None or address.version == family]


def interface_indexes():
    """{address: the index of the interface that holds it}."""
    return dict(_interface_addresses())


def publishable(address):
    """Loopback and IPv6 link-local addresses (which need a scope a TXT
    record cannot carry) are never published."""
    return not (address.is_loopback or address.is_unspecified or (address.version == 6 and address.is_link_local))


def _addresses_of(host, where):
    """The addresses a LISTEN word or --upsd host stands for."""
    if host in WILDCARDS:
        # `::` on Linux takes IPv4 too (bindv6only=0, Debian's default).
        family = WILDCARDS[host]
        return host_addresses(None if family == 6 else 4)
    try:
        return [ipaddress.ip_address(host.split("%")[0])]
    except ValueError:
        pass
    from infrapower.resolve import resolve

    try:
        infos = resolve(host, NUT_PORT, socket.SOCK_STREAM, RESOLVE_TIMEOUT)
    except (OSError, socket.timeout) as error:
        raise ConfigError(f"{where}: cannot resolve {host!r} ({error})") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def _poll_host(host):
    if host in WILDCARDS:
        return "127.0.0.1" if WILDCARDS[host] == 4 else "::1"
    return host


def _port(text, where):
    try:
        port = int(text)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise ConfigError(f"{where}: {text!r} is not a TCP port (1-65535)")
    return port


def endpoints_from_listens(listens, where):
    """[(host, port)] → [Endpoint] (one per port), or a ConfigError saying
    there is nothing but loopback to publish."""
    by_port = {}
    for host, port in listens:
        addresses, poll_hosts = by_port.setdefault(port, ([], []))
        poll_hosts.append(_poll_host(host))
        for address in _addresses_of(host, where):
            if publishable(address) and address not in addresses:
                addresses.append(address)
    endpoints = [Endpoint(port, tuple(addresses), poll_hosts[0])
                 for port, (addresses, poll_hosts) in by_port.items() if addresses]
    if not endpoints:
        shown = ", ".join(f"{host} {port}" for host, port in listens)
        raise ConfigError(f"upsd listens on loopback only ({where}: {shown}): nothing to publish; "
                          "add a LISTEN line with an address clients reach (e.g. LISTEN 0.0.0.0)")
    return endpoints


def from_config_dir(config_dir):
    """The endpoints upsd.conf in `config_dir` gives upsd."""
    from infrapower.nutconf.kinds import listen
    from infrapower.nutconf.syntax import ConfFile

    path = Path(config_dir) / "upsd.conf"
    try:
        found = path.is_file()
    except OSError as error:  # a directory this user may not look into (/etc/nut 0750)
        raise ConfigError(f"{path}: {error.strerror or error}: run as root or as upsd's user") from None
    if not found:
        raise ConfigError(f"{path}: no such file: give --config-dir (the directory of upsd.conf) "
                          "or --upsd HOST:PORT")
    conf = ConfFile.read(path, kind="upsd.conf")  # a ConfError names the file and line
    listens = [(entry.address, _port(entry.port, f"{path}:{entry.line}") if entry.port else NUT_PORT)
               for entry in listen(conf)]
    for host, _ in listens:
        if not host:
            raise ConfigError(f"{path}: a LISTEN line names no address")
    if not listens:
        return endpoints_from_listens([(host, NUT_PORT) for host in DEFAULT_LISTEN],
                                      f"{path} (no LISTEN line: upsd's default)")
    return endpoints_from_listens(listens, str(path))


def from_upsd_option(text):
    """--upsd HOST:PORT (PORT optional; [v6]:port for IPv6)."""
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    if not host:
        raise ConfigError(f"--upsd {text!r}: give HOST:PORT (e.g. 192.0.2.10:3493)")
    endpoints = endpoints_from_listens([(host, _port(port, "--upsd") if port else NUT_PORT)], "--upsd")
    # The records name this host (its .local name, and with avahi-daemon
    # its own addresses): another machine's upsd would be announced here.
    here = set(host_addresses())
    elsewhere = [str(address) for endpoint in endpoints for address in endpoint.addresses if address not in here]
    if elsewhere:
        raise ConfigError(f"--upsd {text!r}: {', '.join(elsewhere)} is not an address of this host; "
                          "run infrapower publish on upsd's own host (the records name the host they come from)")
    return endpoints
