"""The TXT record: DNS-SD key=value strings, each within 255 bytes (one
length octet), the whole kept within 1300 bytes so the record fits in one
packet with its SRV and addresses (RFC 6763, 6.2).  Devices are listed as
`name:type` joined by commas across dev0, dev1, ...; what does not fit is
summarised: `devices` always counts them all, `types` counts them per
type, `more` says how many the list leaves out."""

from collections import Counter
from dataclasses import dataclass

TXT_VERSION = "1"
STRING_LIMIT = 255
RECORD_BUDGET = 1300
LIST_KEY = "dev"
# Characters that would make the list ambiguous: such a device is counted,
# never listed.
SEPARATORS = frozenset(",:=")


def _size(key, value):
    return 1 + len(f"{key}={value}".encode())


def _listable(name, kind):
    return not (SEPARATORS & set(name + kind))


def _clean(kind):
    """A device type as the list can carry it (upsd's value is free text)."""
    return "".join("_" if char in SEPARATORS or char.isspace() else char for char in kind)[:32] or "unknown"


def build(facts):
    """[(key, value)] in order, for any number of devices."""
    devices = [(name, _clean(kind)) for name, kind in facts.devices]
    head = [("txtvers", TXT_VERSION)]
    if facts.protocol:
        head.append(("protovers", facts.protocol))
    if facts.version:
        head.append(("nutvers", facts.version))
    head += [("starttls", facts.starttls), ("devices", str(len(devices)))]
    types = Counter(kind for _, kind in devices)
    if types:
        summary = ",".join(f"{kind}:{count}" for kind, count in sorted(types.items()))
        if _size("types", summary) <= STRING_LIMIT:
            head.append(("types", summary))
    # Room for the list, keeping room for a `more` of any count.
    budget = RECORD_BUDGET - sum(_size(k, v) for k, v in head) - _size("more", str(len(devices)))
    strings, current, listed = [], [], 0
    for name, kind in devices:
        if not _listable(name, kind):
            continue
        item = f"{name}:{kind}"
        key = f"{LIST_KEY}{len(strings)}"
        candidate = ",".join(current + [item])
        if current and _size(key, candidate) > STRING_LIMIT:
            strings.append((key, ",".join(current)))
            current, key = [], f"{LIST_KEY}{len(strings)}"
            candidate = item
        if _size(key, candidate) > STRING_LIMIT:
            continue  # a name too long for any string: counted in `more`
        used = sum(_size(k, v) for k, v in strings) + _size(key, candidate)
        if used > budget:
            break
        current.append(item)
        listed += 1
    if current:
        strings.append((f"{LIST_KEY}{len(strings)}", ",".join(current)))
    record = head + strings
    if listed < len(devices):
        record.append(("more", str(len(devices) - listed)))
    return record


def parse_devices(record):
    """{name: type} from a record's dev0, dev1, ... (what a browser would
    read back; the tests use it on what each client saw)."""
    found = {}
    index = 0
    while f"{LIST_KEY}{index}" in record:
        for item in record[f"{LIST_KEY}{index}"].split(","):
            name, _, kind = item.partition(":")
            if name:
                found[name] = kind
        index += 1
    return found


SERVICE_TYPES = ("_nut._tcp", "_upsd._tcp")
MAX_LABEL = 63  # bytes of a DNS label: the service instance name


@dataclass(frozen=True)
class Service:
    """One DNS-SD service instance to publish."""

    type: str  # "_nut._tcp"
    name: str  # the instance name, e.g. the host name
    port: int
    addresses: tuple  # ipaddress objects
    txt: tuple  # ((key, value), ...)


def instance_name(base, port, several_ports):
    """The host's name (what NUT's own avahi file publishes as %h), with
    the port when upsd listens on several, within one DNS label."""
    suffix = f" ({port})" if several_ports else ""
    room = MAX_LABEL - len(suffix.encode())
    name = base.encode()[:room].decode("utf-8", "ignore")
    return name + suffix


def services(endpoints, facts, base_name):
    """Every service for every endpoint, each type with the same record."""
    record = tuple(build(facts))
    several = len(endpoints) > 1
    return [Service(kind, instance_name(base_name, endpoint.port, several), endpoint.port, endpoint.addresses, record)
            for endpoint in endpoints for kind in SERVICE_TYPES]
