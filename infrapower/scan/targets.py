"""What to scan: addresses from CIDR masks and start/end ranges (as
nut-scanner's -m, -s, -e name them) and port lists.  Pure: no I/O."""

import ipaddress

from infrapower.scan import ScanError

# A /20 of IPv4: beyond that a scan takes long enough that a typo (a /8
# for a /24) is the likelier explanation; --max-hosts raises it.
MAX_HOSTS = 4096


def _address(text, option):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise ScanError(f"{option} {text!r}: not an IP address") from None


def _network_hosts(network):
    """Every usable address of a network: IPv4 subnets lose their network
    and broadcast addresses (nothing answers there), /31 and /32 do not."""
    if network.version == 4 and network.prefixlen < 31:
        return network.hosts()
    return iter(network)


def parse_hosts(masks=(), start=None, end=None, max_hosts=MAX_HOSTS):
    """Addresses (strings, in order, no repeats) from CIDR masks (a bare
    address is its own /32 or /128) and one start..end range (start alone
    is one host).  ScanError for anything malformed or over max_hosts."""
    found = {}

    def add(address):
        found[str(address)] = None
        if len(found) > max_hosts:
            raise ScanError(f"more than {max_hosts} addresses to scan: narrow the range (or raise --max-hosts)")

    for mask in masks:
        try:
            network = ipaddress.ip_network(mask.strip(), strict=False)
        except ValueError:
            raise ScanError(f"--mask_cidr {mask!r}: not a CIDR mask (e.g. 192.168.1.0/24)") from None
        if network.num_addresses > 4 * max_hosts:
            raise ScanError(f"--mask_cidr {mask}: {network.num_addresses} addresses, more than {max_hosts}: "
                            "narrow the range (or raise --max-hosts)")
        for address in _network_hosts(network):
            add(address)
    if end is not None and start is None:
        raise ScanError("--end_ip needs --start_ip")
    if start is not None:
        first = _address(start, "--start_ip")
        last = _address(end, "--end_ip") if end is not None else first
        if first.version != last.version:
            raise ScanError(f"--start_ip {start} and --end_ip {end}: not the same IP version")
        if int(last) < int(first):
            raise ScanError(f"--end_ip {end} comes before --start_ip {start}")
        if int(last) - int(first) + 1 > max_hosts:
            raise ScanError(f"--start_ip {start} .. --end_ip {end}: {int(last) - int(first) + 1} addresses, "
                            f"more than {max_hosts}: narrow the range (or raise --max-hosts)")
        for number in range(int(first), int(last) + 1):
            add(ipaddress.ip_address(number) if first.version == 4 else ipaddress.IPv6Address(number))
    if not found:
        raise ScanError("nothing to scan: give -m/--mask_cidr or -s/--start_ip (and -e/--end_ip)")
    return list(found)


def parse_ports(values, default, option):
    """Ports from repeated options, each possibly comma-separated; the
    default when none is given."""
    ports = []
    for value in values or ():
        for part in str(value).split(","):
            part = part.strip()
            if not part.isascii() or not part.isdigit() or not 1 <= int(part) <= 65535:
                raise ScanError(f"{option} {value!r}: ports are numbers from 1 to 65535")
            if int(part) not in ports:
                ports.append(int(part))
    return ports or [default]


def address(host, port):
    """host:port as the output shows it ([v6]:port for IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
