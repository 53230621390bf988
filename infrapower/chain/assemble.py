"""A Chain built from its files: ups.conf (devices and their `parent =`
lines, on one upsd or several) and the servers file (servers, their PSUs,
SNMP PDUs, other upsds).

Apart from infrapower.chain.model because it needs servers.py, and
servers.py builds on the model's types: one module holding both would be
an import cycle.
"""

from pathlib import Path

from infrapower.chain.model import Chain, ChainError, Link, Origin, Problem, Upsd, link_declared_parent
from infrapower.chain.psudevices import add_psu_servers, is_psu_device, psu_link
from infrapower.chain.servers import add_other_upsds, add_servers, add_snmp_pdus, link_snmp_pdus
from infrapower.chain.upsconf import ConfError, UpsConf

SERVERS_CONF = "servers.conf"


def build(ups_conf, servers_conf=None, upsd=None):
    """A Chain from ups.conf (its devices and their `parent =` lines, its
    PSU devices) and the servers file (None: ups.conf alone); every
    problem found is in `chain.problems`."""
    if servers_conf is None:
        servers_conf = UpsConf("", SERVERS_CONF)  # nothing in it: the defaults
    settings = servers_conf.globals
    try:
        upsd = upsd or Upsd.parse(settings.get("upsd", "localhost"))
    except ValueError as error:
        entry = settings.entry("upsd")
        raise ChainError(f"{Origin(servers_conf.path, entry.line if entry else 0)}: upsd: {error}") from None
    chain = Chain(upsd, ups_conf, settings)

    # Devices first, so a parent may name a device declared further down
    # (or an SNMP PDU of the servers file: a UPS may hang from its outlet).
    add_other_upsds(chain, servers_conf)
    for each_upsd, each_conf in chain.ups_confs.items():
        add_devices(chain, each_upsd, each_conf)
    add_snmp_pdus(chain, servers_conf)
    for each_upsd, each_conf in chain.ups_confs.items():
        for name, section in each_conf.sections.items():
            entry = section.entry("parent")
            if entry is None:
                continue  # a chain end: what feeds it is not described
            link = chain.links[chain.device_id(name, each_upsd)]
            link_declared_parent(chain, link, name, entry, each_conf.path, each_upsd)

    link_snmp_pdus(chain, servers_conf)
    add_servers(chain, servers_conf)
    add_psu_servers(chain, {each_upsd: each_conf.path for each_upsd, each_conf in chain.ups_confs.items()})
    _check_cycles(chain)
    return chain


def add_devices(chain, upsd, ups_conf):
    """A device link for every section of the ups.conf `upsd` reads (a
    PSU link for a PSU device: infrapower.chain.psudevices)."""
    for name, section in ups_conf.sections.items():
        device_id = chain.device_id(name, upsd)
        if is_psu_device(section):
            chain.links[device_id] = psu_link(device_id, name, upsd, ups_conf.path, section)
            continue
        chain.links[device_id] = Link(
            device_id,
            "device",
            None,
            Origin(ups_conf.path, section.line),
            label=device_id,
            desc=section.get("desc") or "",
            device=name,
            upsd=upsd,
            conf=section,
        )


def _check_cycles(chain):
    """A parent chain that comes back to itself never reaches main: report
    it once, at the line of the link where the loop was entered, and cut
    it there so later walks end."""
    reported = set()
    for start in list(chain.links):
        seen = []
        link_id = start
        while link_id is not None and link_id not in seen:
            seen.append(link_id)
            link_id = chain.links[link_id].parent
        if link_id is None:
            continue
        loop = seen[seen.index(link_id):]
        key = frozenset(loop)
        if key in reported:
            continue
        reported.add(key)
        devices = [chain.links[i] for i in loop if chain.links[i].kind == "device"]
        first = devices[0] if devices else chain.links[loop[0]]
        cycle = " -> ".join(chain.links[i].label for i in loop + [loop[0]])
        chain.problems.append(Problem(first.origin, f"a cycle in the power chain: {cycle}"))
        first.parent = None


def load(config_dir, ups_conf_path=None, servers_path=None, upsd=None):
    """The Chain described in `config_dir` (ups.conf and servers.conf, or
    the files given); raises ChainError for files that cannot be read.
    servers.conf may be missing when ups.conf describes servers (PSU
    devices); a servers file given by name may not."""
    directory = Path(config_dir)
    try:
        ups_conf = UpsConf.read(ups_conf_path or directory / "ups.conf")
        servers_conf = _servers_conf(servers_path, directory / SERVERS_CONF, ups_conf)
    except ConfError as error:
        raise ChainError(str(error)) from None
    return build(ups_conf, servers_conf, upsd)


def _servers_conf(given, default, ups_conf):
    if given is not None:
        return UpsConf.read(given)
    if default.exists() or not any(is_psu_device(section) for section in ups_conf.sections.values()):
        try:
            return UpsConf.read(default)
        except ConfError as error:
            raise ChainError(
                f"{error} (and {ups_conf.path} describes no server: no power supply device, driver = ipmi-psu "
                "or server = NAME)"
            ) from None
    return None  # ups.conf alone: its PSU devices are the servers
