"""The power chain as a graph: every link single-linked to its parent.

Links, from a server down to the mains:

    server -> psu -> outlet -> device (PDU) -> ... -> device (UPS) -> main

Names (what `--fail` and the views use):
- `main`: the mains, the root of every chain (it is not a failure point:
  guarding against it is what UPSes are for);
- `ups1`: a NUT device on the configured upsd; `ups1@HOST[:PORT]` one on
  another upsd; `pdu3`: an SNMP PDU the servers file declares (`snmp =`),
  which no upsd serves;
- `pdu1:3`: outlet 3 of pdu1 (`pdu1:outlet3` in a parent is the same
  outlet; an outlet given by name, `pdu1:clc`, is matched against the
  outlet's desc/name when read live); `pdu1:3@HOST:PORT` on another upsd;
- `clc:psu1`: a power supply of a server; `clc`: the server.

A device's parent comes from ups.conf (`parent = device[:outlet][@host[:port]]`
or `main`, the grammar the spec gives), an SNMP PDU's and a PSU's from the
servers file.
Every problem found while building is a `Problem` carrying `file:line`.
This module holds the types and the rules on them; `infrapower.chain.assemble`
builds a Chain from the files (it needs servers.py, which builds on these
types, so it cannot live here without an import cycle).
"""

import re
from dataclasses import dataclass, field

from infrapower.errors import ConfigError
from infrapower.ports import NUT_PORT, SNMP_PORT

MAIN = "main"
DEFAULT_UPSD_PORT = NUT_PORT
LOOPBACK = ("localhost", "127.0.0.1", "::1")
# NUT device names: what upsd accepts in ups.conf section names.
_DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_OUTLET_WORD = re.compile(r"^outlet\.?(\d+)$", re.IGNORECASE)


def is_device_name(text):
    """A name upsd accepts for a device (and this tool for a server)."""
    return bool(_DEVICE_NAME.match(text or ""))


class ChainError(ConfigError):
    """A failure the user can act on, as one line."""


@dataclass(frozen=True)
class Origin:
    path: str
    line: int

    def __str__(self):
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)
class Problem:
    origin: object  # Origin or None
    message: str

    def __str__(self):
        return f"{self.origin}: {self.message}" if self.origin else self.message


@dataclass(frozen=True)
class Upsd:
    host: str
    port: int = DEFAULT_UPSD_PORT

    def __str__(self):
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text):
        host, port = split_host_port(text, DEFAULT_UPSD_PORT)
        return cls(host, port)


def _same_upsd(a, b):
    """The same upsd, any loopback name being as good as another."""
    return a.port == b.port and (a.host == b.host or (a.host in LOOPBACK and b.host in LOOPBACK))


@dataclass(frozen=True)
class ParentRef:
    """A parsed `parent =` value; `device` is None for main."""

    device: object
    outlet: object = None  # "3" for a numbered outlet, else the outlet's name
    host: object = None
    port: object = None
    # The outlet as written (`outlet3`): what the views show, as the spec's
    # `upsc -P` does; not part of the identity (`outlet3` is outlet 3).
    written: object = field(default=None, compare=False)
    port_given: bool = field(default=False, compare=False)  # `@host:port`, not `@host`

    @property
    def is_main(self):
        return self.device is None


_HOST_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_V6_ADDRESS = re.compile(r"^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9_.-]+)?$")


def split_host_port(text, default_port):
    """`host`, `host:port`, `[v6addr]:port` -> (host, port); raises
    ValueError saying what is wrong."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not _V6_ADDRESS.match(host):
            raise ValueError(f"{text!r}: write an IPv6 address as [ADDRESS] or [ADDRESS]:PORT")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text!r}: only :PORT may follow [ADDRESS]")
        port = rest[1:]
    else:
        host, _, port = text.partition(":")
        if not host:
            raise ValueError(f"no host in {text!r}")
        if ":" in port:
            raise ValueError(f"{text!r}: write an IPv6 address as [ADDRESS] or [ADDRESS]:PORT")
        if not _HOST_NAME.match(host):
            raise ValueError(f"{host!r} is not a host name or address")
    if not port:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"port {port!r} is not a number from 1 to 65535")
    return host, int(port)


def parse_parent(text):
    """`device[:outlet][@hostname[:port]]` or `main` -> ParentRef; raises
    ValueError saying what is wrong."""
    text = text.strip()
    if text.lower() == MAIN:
        return ParentRef(None)
    left, at, where = text.partition("@")
    host = port = None
    if at:
        host, port = split_host_port(where, DEFAULT_UPSD_PORT)
    port_given = bool(at) and (where.rpartition("]")[2] if where.startswith("[") else where).count(":") == 1
    device, colon, outlet = left.partition(":")
    if not _DEVICE_NAME.match(device or ""):
        raise ValueError(f"{device!r} is not a NUT device name (grammar: device[:outlet][@hostname[:port]] or main)")
    if colon and not outlet:
        raise ValueError("empty outlet after ':'")
    if outlet:
        numbered = _OUTLET_WORD.match(outlet)
        written, outlet = outlet, (numbered.group(1) if numbered else outlet)
        return ParentRef(device, outlet, host, port, written, port_given)
    return ParentRef(device, None, host, port, port_given=port_given)


@dataclass
class Link:
    """One link of a chain.  `kind` is main, device, outlet, psu or server;
    `parent` the id of the link it hangs from (None for main and for chain
    ends nobody described)."""

    id: str
    kind: str
    parent: object = None
    origin: object = None  # where the link (or its parent line) was written
    label: str = ""  # what a person sees: "pdu1:1", "psu1"
    desc: str = ""
    device: object = None  # device name, for outlets and devices
    outlet: object = None  # outlet token, for outlets
    upsd: object = None  # Upsd serving the device/outlet
    conf: object = None  # the device's ups.conf section, if declared here
    server: object = None  # for PSUs
    snmp: object = None  # SnmpPdu, for a device the servers file declares (no upsd serves it)
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SnmpPdu:
    """How to reach a PDU over SNMP: its address, and fence_snmp_pdu's
    options for the rest (infrapower.chain.snmpconf)."""

    host: str
    port: int = SNMP_PORT
    options: tuple = ()  # (option, value) pairs: snmp_version, community or the v3 ones
    mib: object = None  # a NUT mapping name forced, else detected

    def __str__(self):
        return f"{self.host}:{self.port}"


@dataclass
class Server:
    name: str
    desc: str
    origin: Origin
    psus: list  # link ids, in file order
    bmc: object = None  # (host, port) or None
    bmc_username: str = ""
    bmc_password: str = ""
    how: str = ""  # for a server of ups.conf's PSU devices: what grouped them


class Chain:
    """Every link by id, the servers, the configuration behind them and
    the problems found building it."""

    def __init__(self, upsd, ups_conf, settings):
        self.upsd = upsd  # the upsd serving ups.conf's devices
        self.ups_conf = ups_conf
        self.settings = settings  # the servers file's global directives
        self.ups_confs = {upsd: ups_conf}  # every upsd whose devices are described, and its ups.conf
        self.upsd_settings = {}  # another upsd -> its `[@host:port]` section of the servers file
        self.links = {MAIN: Link(MAIN, "main", label=MAIN)}
        self.servers = {}
        self.problems = []

    # -- names ---------------------------------------------------------------

    def device_id(self, device, upsd=None):
        upsd = upsd or self.upsd
        return device if upsd == self.upsd else f"{device}@{upsd}"

    def outlet_id(self, device, outlet, upsd=None):
        upsd = upsd or self.upsd
        return f"{device}:{outlet}" if upsd == self.upsd else f"{device}:{outlet}@{upsd}"

    def resolve_parent(self, ref, origin, child, home=None):
        """The link id a ParentRef names, creating outlet links (and links
        for devices on undescribed upsds) as they are first named; None
        after recording a Problem.  `home` is the upsd whose ups.conf holds
        the line (None: the servers file); a parent without `@host` is on
        it (on the configured upsd for the servers file)."""
        if ref.is_main:
            return MAIN
        upsd = Upsd(ref.host, ref.port) if ref.host else (home or self.upsd)
        if upsd.host in LOOPBACK:
            # upsd reads its ups.conf on its own host, so `@localhost` there
            # (the spec's own example) is that host, even when it is reached
            # here by another name; and without a port it is that upsd
            # (the spec writes `pdu1:outlet1@localhost`, whatever its port).
            local = (home if not ref.port_given else Upsd(home.host, upsd.port)) if home else upsd
            known = (home or self.upsd, self.upsd, *self.ups_confs, *self.upsd_settings)
            upsd = next((k for k in known if _same_upsd(k, local)), local)
        device_id = self.device_id(ref.device, upsd)
        if device_id in self.links and self.links[device_id].kind == "psu":
            self.problems.append(Problem(
                origin, f"{child}: parent {ref.device!r} is a power supply: it feeds its server, nothing else"
            ))
            return None
        if device_id not in self.links or self.links[device_id].kind != "device":
            described = self.ups_confs.get(upsd)
            if described is not None:
                known = ", ".join(described.sections) or "none"
                snmp = [i for i, link in self.links.items() if link.snmp is not None]
                also = f"; SNMP PDUs of the servers file: {', '.join(snmp)}" if snmp and upsd == self.upsd else ""
                where = "ups.conf" if upsd == self.upsd else f"{described.path} (upsd at {upsd})"
                self.problems.append(
                    Problem(origin, f"{child}: parent {ref.device!r} is no device of {where} (devices: {known}{also})")
                )
                return None
            # On another upsd: known only by name; its own feed is not
            # described here, so its chain ends at it (checked live).
            self.links[device_id] = Link(
                device_id, "device", None, origin, label=device_id, device=ref.device, upsd=upsd
            )
        if ref.outlet is None:
            return device_id
        outlet_id = self.outlet_id(ref.device, ref.outlet, upsd)
        if outlet_id not in self.links:
            self.links[outlet_id] = Link(
                outlet_id,
                "outlet",
                device_id,
                origin,
                # as first written: `pdu1:outlet1` stays so, as in the spec
                label=self.outlet_id(ref.device, ref.written or ref.outlet, upsd),
                device=ref.device,
                outlet=ref.outlet,
                upsd=self.links[device_id].upsd,  # None on an SNMP PDU
            )
        return outlet_id

    # -- walking -------------------------------------------------------------

    def path(self, link_id):
        """The links from `link_id` up to its chain's end (main, or an
        undescribed device), the link itself first."""
        path, seen = [], set()
        while link_id is not None and link_id not in seen:
            seen.add(link_id)
            path.append(link_id)
            link_id = self.links[link_id].parent
        return path

    def feeds(self, server):
        """{psu link id: its path (PSU first)} of a server."""
        return {psu: self.path(psu) for psu in self.servers[server].psus}

    def psus_below(self, link_id):
        """Every PSU whose feed passes through `link_id`."""
        return [
            psu
            for server in self.servers.values()
            for psu in server.psus
            if link_id in self.path(psu)
        ]

    def find(self, name):
        """The link id a person means by `name` (`ups2`, `pdu1:3`,
        `pdu1:outlet3`, `clc:psu1`, `clc`); raises ChainError."""
        if name in self.links:
            return name
        try:
            ref = parse_parent(name)
        except ValueError:
            ref = None
        if ref is not None and ref.device:
            upsd = Upsd(ref.host, ref.port) if ref.host else self.upsd
            candidate = (
                self.outlet_id(ref.device, ref.outlet, upsd) if ref.outlet else self.device_id(ref.device, upsd)
            )
            if candidate in self.links:
                return candidate
        raise ChainError(f"no link named {name!r} (links: {', '.join(sorted(k for k in self.links if k != MAIN))})")


def link_declared_parent(chain, link, name, entry, path, home=None):
    """Set a device's parent from its `parent =` line (a ups.conf, whose
    upsd is `home`, or the servers file), or record why it cannot be."""
    origin = Origin(path, entry.line)
    link.origin = origin
    try:
        ref = parse_parent(entry.value or "")
    except ValueError as error:
        chain.problems.append(Problem(origin, f"[{name}] parent = {entry.value}: {error}"))
        return
    if ref.device == name and ref.host is None:
        chain.problems.append(Problem(origin, f"[{name}] is its own parent"))
        return
    link.parent = chain.resolve_parent(ref, origin, f"[{name}]", home)


def compact(chain, links, keep=()):
    """A path as the spec's `upsc -P` shows it: a device right after its
    own outlet is implied by the outlet (`pdu1:1 -> ups1`), unless it is in
    `keep` (a device whose state must be seen)."""
    shown = []
    for index, link_id in enumerate(links):
        link = chain.links[link_id]
        previous = chain.links[links[index - 1]] if index else None
        implied = link.kind == "device" and previous is not None and previous.kind == "outlet" and previous.parent == link_id
        if not implied or link_id in keep:
            shown.append(link_id)
    return shown
