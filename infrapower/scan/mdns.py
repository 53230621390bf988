"""mDNS discovery of upsd servers: browse `_nut._tcp` (what Home Assistant
and NUT's own avahi service file use) and `_upsd._tcp` (what nut-scanner
-A browses), resolve each instance to an address and port, then ask that
upsd for its devices with the upsd probe (infrapower.scan.nut).

python-zeroconf does the multicast; it is imported only when a scan
browses (it costs ~0.2 s), and a scan without it says so in one line."""

import threading
import time

SERVICE_TYPES = ("_nut._tcp.local.", "_upsd._tcp.local.")
_RESOLVE_SLICE = 0.05  # seconds between two looks for newly browsed names


def available():
    """Whether python-zeroconf can be imported, without importing it."""
    from importlib.util import find_spec

    return find_spec("zeroconf") is not None


def _txt(properties):
    """TXT key/values as text; a key without a value maps to ""."""
    found = {}
    for key, value in (properties or {}).items():
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        found[name] = "" if value is None else (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return found


def _addresses(info):
    """IPv4 addresses first (a upsd published on both families is one
    server), then IPv6 with their scope."""
    try:
        addresses = info.parsed_scoped_addresses()
    except Exception:  # an address record python-zeroconf cannot parse
        return []
    return sorted(addresses, key=lambda address: (":" in address, address))


def browse(timeout):
    """{(host, port): {"names", "services", "server", "txt"}} for every upsd
    published under either service type and resolved within `timeout`
    seconds; {"error": line} when mDNS cannot run here."""
    from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

    seen, lock = [], threading.Lock()

    def on_change(zeroconf, service_type, name, state_change):  # python-zeroconf's thread: no blocking here
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            with lock:
                seen.append((service_type, name))

    try:
        zeroconf = Zeroconf(ip_version=IPVersion.All)
    except OSError as error:
        return {"error": f"mDNS: cannot open a multicast socket: {error.strerror or error}"}
    found, resolved = {}, set()
    deadline = time.monotonic() + timeout
    try:
        browser = ServiceBrowser(zeroconf, list(SERVICE_TYPES), handlers=[on_change])
        try:
            while time.monotonic() < deadline:
                with lock:
                    fresh = [entry for entry in seen if entry not in resolved]
                if not fresh:
                    threading.Event().wait(min(_RESOLVE_SLICE, max(0.0, deadline - time.monotonic())))
                    continue
                for service_type, name in fresh:
                    resolved.add((service_type, name))
                    left = max(0.05, deadline - time.monotonic())
                    info = zeroconf.get_service_info(service_type, name, timeout=int(left * 1000))
                    if info is None or not info.port:
                        continue
                    addresses = _addresses(info)
                    if not addresses:
                        continue
                    entry = found.setdefault((addresses[0], info.port), {"names": [], "services": [],
                                                                         "server": (info.server or "").rstrip("."),
                                                                         "txt": {}})
                    instance = name[:-len(service_type)].rstrip(".") if name.endswith(service_type) else name
                    if instance not in entry["names"]:
                        entry["names"].append(instance)
                    if service_type.rstrip(".") not in entry["services"]:
                        entry["services"].append(service_type.rstrip("."))
                    entry["txt"].update(_txt(info.properties))
        finally:
            browser.cancel()
    finally:
        zeroconf.close()
    return found


def results(servers):
    """Results of kind "mdns" from browse(), before their upsd probe."""
    from infrapower.scan.targets import address

    if "error" in servers:
        return [{"kind": "mdns", "address": "-", "host": "", "port": 0, "error": servers["error"]}]
    return [{"kind": "mdns", "address": address(host, port), "host": host, "port": port, **published}
            for (host, port), published in servers.items()]
