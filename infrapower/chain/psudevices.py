"""Servers described by ups.conf alone: the spec's form, each power supply
a NUT device with its `parent =`, no servers file needed.

    [clc-psu1]
        driver = ipmi-psu             # this pack's driver: the PSU through its BMC
        port = bmc-clc:623            # the BMC: PSU devices of one BMC are one server
        psu = 1
        parent = pdu1:outlet1@localhost
    [clc-psu2]
        driver = ipmi-psu
        port = bmc-clc
        psu = 2
        parent = pdu2:outlet1@localhost

A section is a *PSU device* when its driver is `ipmi-psu` (out of band,
through the server's BMC) or NUT's own `nut-ipmipsu` (in band: it reads the
PSUs of the machine it runs on), or when it has `server = NAME` (any
driver). PSU devices belong to one server when they share their BMC
(`ipmi-psu`'s `port`, `:623` implied), when they are `nut-ipmipsu`
devices of one upsd (one machine), or when they say the same `server =`.
The server's name is its `server =`, else the section names' common prefix
up to a `-`, `_` or `.` (`clc-psu1`, `clc-psu2` -> `clc`), else the BMC's
host (for `nut-ipmipsu`: the upsd's).

The PSU's link is the device itself (`clc-psu1`, as `upsc` names it):
`--fail clc-psu1`, and with `--live` its state is what upsd publishes.
"""

import re

from infrapower.chain.model import Link, Origin, Problem, Server, is_device_name, split_host_port
from infrapower.ports import IPMI_PORT

OUT_OF_BAND, IN_BAND = "ipmi-psu", "nut-ipmipsu"
PSU_DRIVERS = (OUT_OF_BAND, IN_BAND)
SERVER_KEY = "server"
_SEPARATOR = re.compile(r"[-_.]")


def is_psu_device(section):
    return section.get("driver") in PSU_DRIVERS or section.entry(SERVER_KEY) is not None


def psu_link(device_id, name, upsd, path, section):
    """The link of a PSU device (its server comes later: add_psu_servers)."""
    return Link(
        device_id, "psu", None, Origin(path, section.line), label=device_id, desc=section.get("desc") or "",
        device=name, upsd=upsd, conf=section,
    )


def _machine(chain, link, path):
    """What the device's PSUs are part of: ("BMC", "host:port") for
    ipmi-psu, ("upsd", "host:port") for nut-ipmipsu, or None; a bad `port`
    is a Problem."""
    section = link.conf
    driver = section.get("driver")
    if driver == OUT_OF_BAND:
        entry = section.entry("port")
        if entry is None or not entry.value:
            if section.entry(SERVER_KEY) is None:
                chain.problems.append(Problem(
                    Origin(path, section.line),
                    f"[{link.device}]: an ipmi-psu device needs port = its BMC (HOST[:PORT]), or server = NAME",
                ))
            return None
        try:
            host, port = split_host_port(entry.value, IPMI_PORT)
        except ValueError as error:
            chain.problems.append(Problem(Origin(path, entry.line), f"[{link.device}] port: {error} (its BMC: HOST[:PORT])"))
            return None
        return "BMC", f"{host.lower()}:{port}"
    if driver == IN_BAND:
        return "upsd", str(link.upsd)
    return None


def _server_of(chain, link, path):
    """The device's `server =` name, or None; a bad one is a Problem."""
    entry = link.conf.entry(SERVER_KEY)
    if entry is None:
        return None
    if not is_device_name(entry.value):
        chain.problems.append(Problem(
            Origin(path, entry.line), f"[{link.device}] server = {entry.value}: not a server name (letters, digits, . _ -)"
        ))
        return None
    return entry.value


def _common_prefix(names):
    """`clc-psu1`, `clc-psu2` -> `clc`: the words (split at - _ .) the names
    share, short of any whole name (one name: all but its last word)."""
    split = [_SEPARATOR.split(name) for name in names]
    shortest = min(len(words) for words in split)
    count = 0
    while count < shortest - 1 and all(words[count] == split[0][count] for words in split):
        count += 1
    if count == 0:
        return ""
    # The original text up to the end of the shared words, separators kept.
    first = names[0]
    cut = [match.start() for match in _SEPARATOR.finditer(first)][count - 1]
    return first[:cut]


def add_psu_servers(chain, paths):
    """Group every PSU device of the chain into servers and add them;
    `paths`: upsd -> the path of the ups.conf describing its devices."""
    links = [link for link in chain.links.values() if link.kind == "psu" and link.conf is not None]
    if not links:
        return
    # Union-find over the devices: one BMC (or one in-band machine), or
    # one `server =`, is one server.
    parent = {link.id: link.id for link in links}

    def root(key):
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    first_of = {}
    facts = {}
    for link in links:
        path = paths[link.upsd]
        if link.conf.entry("parent") is None:
            chain.problems.append(Problem(
                Origin(path, link.conf.line),
                f"[{link.device}]: a power supply needs parent = what feeds it (device[:outlet][@host[:port]])",
            ))
        machine, server = _machine(chain, link, path), _server_of(chain, link, path)
        facts[link.id] = (machine, server)
        if machine is None and server is None and link.conf.get("driver") == OUT_OF_BAND:
            continue  # its problem is said; a server of its own would only add a confusing one
        for key in (machine, ("server", server) if server else None):
            if key is None:
                continue
            if key in first_of:
                parent[root(link.id)] = root(first_of[key])
            else:
                first_of[key] = link.id

    groups = {}
    for link in links:  # in file order: the servers' order
        if any(facts[link.id]):  # else skipped above
            groups.setdefault(root(link.id), []).append(link)
    for members in groups.values():
        _add_server(chain, members, facts, paths)


def _add_server(chain, members, facts, paths):
    first = members[0]
    path = paths[first.upsd]
    named = {}
    for link in members:
        server = facts[link.id][1]
        if server is not None:
            named.setdefault(server, link)
    machines = [facts[link.id][0] for link in members if facts[link.id][0]]
    if len(named) > 1:
        (one, a), (other, b) = list(named.items())[:2]
        chain.problems.append(Problem(
            Origin(paths[b.upsd], b.conf.entry(SERVER_KEY).line),
            f"[{b.device}] server = {other}, but [{a.device}] on the same BMC says server = {one}: "
            "the PSUs of one BMC are one server",
        ))
    if named:
        name, how = next(iter(named)), f"server = {next(iter(named))}"
    elif _common_prefix([link.device for link in members]):
        name, how = _common_prefix([link.device for link in members]), "named from its PSU devices"
    elif machines:
        kind, where = machines[0]
        name, how = where.rsplit(":", 1)[0].strip("[]"), f"named from its {kind}"
    else:
        name, how = first.device, "named from its PSU device"
    if len({m for m in machines}) > 1:
        how += f", {len(set(machines))} BMCs"
    elif machines:
        how += f", {machines[0][0]} {machines[0][1]}"

    origin = Origin(path, first.conf.line)
    taken = chain.servers.get(name)
    if taken is not None and taken.how:  # two groups of PSU devices
        chain.problems.append(Problem(
            origin, f"[{first.device}]: its server {name!r} ({how}) is also the server at {taken.origin} "
                    f"({taken.how}): one BMC per server, or set server = NAME in their PSU sections",
        ))
        return
    if taken is not None:
        chain.problems.append(Problem(
            origin, f"[{first.device}]: its server {name!r} is also a server of {taken.origin}: describe it in one place"
        ))
        return
    if name in chain.links:
        chain.problems.append(Problem(
            origin, f"[{first.device}]: its server {name!r} ({how.split(',')[0]}) shares its name with a link of the "
                    "chain: set server = NAME in its PSU sections",
        ))
        return
    server = Server(name, "", origin, [link.id for link in members], how=how)
    for link in members:
        link.server = name
    chain.servers[name] = server
    chain.links[name] = Link(name, "server", None, origin, label=name)
