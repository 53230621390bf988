"""The pack's servers file: servers and their power supplies, in ups.conf's
own syntax (so one parser reads both, and admins know the rules).

    # global directives: where ups.conf's devices are served, and the
    # fencing credentials the plan writes into its pcs commands
    upsd = 127.0.0.1:3493
    fence_nut_username = fencer
    fence_nut_password_script = /usr/local/sbin/nut-fencer-pw   # or fence_nut_password

    [clc]
        desc = "cloud controller"
        psu.psu1 = pdu1:1             # parent of PSU psu1: outlet 1 of pdu1
        psu.psu2 = pdu2:outlet1@nut2.example.com:3493
        bmc = 10.0.0.21:623           # optional: PSU health for --live
        bmc_username = admin
        bmc_password = secret

    [@nut2.example.com:3493]          # another upsd (parents name its devices `pdu4:1@nut2.example.com:3493`)
        ups_conf = nut2-ups.conf      # optional: its ups.conf (a copy with parent = lines), beside this file
        fence_nut_username = fencer2  # optional: its own fencing user (all three fence_nut_* keys, else the globals)
        fence_nut_password_script = /usr/local/sbin/nut2-fencer-pw

    [pdu3]                            # a PDU no upsd serves: read over SNMP
        snmp = 10.0.0.7               # HOST[:PORT], port 161 by default
        community = private           # else the global snmp_community, else private
        snmp_version = v2c            # v1 (the default, as fence_snmp_pdu), v2c, or v3 with
                                      # snmp-ups's secName, secLevel, authProtocol, authPassword...
        mib = apc_pdu                 # optional: the NUT mapping, instead of detecting it
        parent = ups1                 # its inlet: a device, an outlet, or main

Every `psu.NAME` key is a power supply whose value is its parent, in the
spec's grammar `device[:outlet][@hostname[:port]]`.  A section with
`snmp =` is an SNMP PDU, not a server: its outlets (`pdu3:2`) can be
parents like any NUT device's, and `--live` / `--plan` read and switch
them with fence_snmp_pdu's own code (infrapower.snmp.pdu).
"""

from pathlib import Path

from infrapower.chain.model import (
    Link, Origin, Problem, Server, SnmpPdu, Upsd, link_declared_parent, parse_parent, split_host_port,
)
from infrapower.chain.snmpconf import KEYS as SNMP_SETTING_KEYS
from infrapower.ports import IPMI_PORT, SNMP_PORT

PSU_PREFIX = "psu."
SERVER_KEYS = {"desc", "bmc", "bmc_username", "bmc_password"}
FENCE_NUT_KEYS = ("fence_nut_username", "fence_nut_password", "fence_nut_password_script")
GLOBAL_KEYS = {"upsd", "snmp_community", *FENCE_NUT_KEYS}
UPSD_PREFIX = "@"  # [@HOST:PORT]: another upsd
UPSD_KEYS = {"ups_conf", *FENCE_NUT_KEYS}
SNMP_KEY = "snmp"
SNMP_PDU_KEYS = {SNMP_KEY, "mib", "parent", "desc", *SNMP_SETTING_KEYS}
DEFAULT_COMMUNITY = "private"  # fence_snmp_pdu's default


def is_snmp_pdu(section):
    return section.entry(SNMP_KEY) is not None


def is_other_upsd(name):
    return name.startswith(UPSD_PREFIX)


def add_other_upsds(chain, conf):
    """Every `[@HOST[:PORT]]` section: another upsd, with the fence_nut
    credentials for it and (`ups_conf =`) its copy of ups.conf, whose
    devices and `parent =` lines join the chain as `device@HOST:PORT`."""
    from infrapower.chain.upsconf import ConfError, UpsConf

    for name, section in conf.sections.items():
        if not is_other_upsd(name):
            continue
        origin = Origin(conf.path, section.line)
        try:
            upsd = Upsd.parse(name[len(UPSD_PREFIX):])
        except ValueError as error:
            chain.problems.append(Problem(origin, f"[{name}]: {error} (another upsd is written [@HOST[:PORT]])"))
            continue
        if upsd == chain.upsd or upsd in chain.upsd_settings:
            chain.problems.append(Problem(origin, f"[{name}]: upsd {upsd} is described twice (see `upsd =` and [@...] sections)"))
            continue
        for entry in section.entries:
            if entry.key not in UPSD_KEYS:
                chain.problems.append(Problem(
                    Origin(conf.path, entry.line),
                    f"[{name}]: unknown setting {entry.key!r} for another upsd (known: {', '.join(sorted(UPSD_KEYS))})",
                ))
        chain.upsd_settings[upsd] = section
        entry = section.entry("ups_conf")
        if entry is None:
            continue  # credentials only: its devices end their chains
        path = Path(entry.value or "")
        if not path.is_absolute():
            path = Path(conf.path).parent / path  # beside the servers file
        try:
            chain.ups_confs[upsd] = UpsConf.read(path)
        except ConfError as error:
            chain.problems.append(Problem(Origin(conf.path, entry.line), f"[{name}] ups_conf: {error}"))


def add_snmp_pdus(chain, conf):
    """A device link for every SNMP PDU (`snmp =` section) of the servers
    file, before any parent is resolved; their own parents come later
    (link_snmp_pdus), once every device exists."""
    for name, section in conf.sections.items():
        if not is_snmp_pdu(section) or is_other_upsd(name):
            continue
        origin = Origin(conf.path, section.line)
        if name in chain.links:
            chain.problems.append(
                Problem(origin, f"[{name}]: an SNMP PDU may not share its name with a NUT device of ups.conf")
            )
            continue
        for entry in section.entries:
            if entry.key not in SNMP_PDU_KEYS:
                chain.problems.append(Problem(
                    Origin(conf.path, entry.line),
                    f"[{name}]: unknown setting {entry.key!r} for an SNMP PDU (known: {', '.join(sorted(SNMP_PDU_KEYS))})",
                ))
        snmp = _snmp_settings(chain, conf, name, section)
        chain.links[name] = Link(
            name, "device", None, origin, label=name, desc=section.get("desc") or "", device=name, snmp=snmp,
            extra={"snmp_origin": Origin(conf.path, section.entry(SNMP_KEY).line)},
        )


def _snmp_settings(chain, conf, name, section):
    """The SnmpPdu a section describes; problems recorded, defaults kept."""
    from infrapower.chain.snmpconf import fence_options

    def where(key):
        entry = section.entry(key)
        return Origin(conf.path, entry.line if entry else section.line)

    host, port = "", SNMP_PORT
    try:
        host, port = split_host_port(section.get(SNMP_KEY) or "", SNMP_PORT)
    except ValueError as error:
        chain.problems.append(Problem(where(SNMP_KEY), f"[{name}] snmp: {error} (write HOST[:PORT])"))
    community = chain.settings.get("snmp_community") or DEFAULT_COMMUNITY
    options, problems = fence_options(section, community, scripts=True)
    for key, problem in problems:
        chain.problems.append(Problem(where(key), f"[{name}] {problem}"))
    mib = section.get("mib") or None
    if mib is not None:
        problem = _check_mib(mib)
        if problem:
            chain.problems.append(Problem(where("mib"), f"[{name}] mib: {problem}"))
    return SnmpPdu(host, port, tuple(options.items()), mib)


def _check_mib(mib):
    """Why fence_snmp_pdu would refuse `mib`, or None: the agent's own
    lookup (infrapower.snmp.pdu.identify with a forced mapping asks nothing of
    the PDU, nor does building its outlets view)."""
    from infrapower import tables
    from infrapower.snmp import pdu
    from infrapower.fence import FenceError

    try:
        document = tables.load()
        pdu.Pdu(None, document, pdu.identify(None, document, mib))
    except (FenceError, tables.TableError) as error:
        return str(error)
    return None


def link_snmp_pdus(chain, conf):
    """Each SNMP PDU's own parent (`parent =`, required: its inlet)."""
    for name, section in conf.sections.items():
        link = chain.links.get(name)
        if not is_snmp_pdu(section) or link is None or link.snmp is None:
            continue
        entry = section.entry("parent")
        if entry is None:
            chain.problems.append(Problem(
                Origin(conf.path, section.line),
                f"[{name}]: an SNMP PDU needs `parent =` (what feeds its inlet: a UPS, an outlet, or main)",
            ))
            continue
        link_declared_parent(chain, link, name, entry, conf.path)


def add_servers(chain, conf):
    """Add every server of the servers file and its PSUs to `chain`."""
    for entry in conf.globals.entries:
        if entry.key not in GLOBAL_KEYS:
            chain.problems.append(
                Problem(Origin(conf.path, entry.line), f"unknown global setting {entry.key!r} (known: {', '.join(sorted(GLOBAL_KEYS))})")
            )
    for name, section in conf.sections.items():
        if is_snmp_pdu(section) or is_other_upsd(name):
            continue  # add_snmp_pdus, add_other_upsds
        origin = Origin(conf.path, section.line)
        if name in chain.links:
            chain.problems.append(Problem(origin, f"[{name}]: a server may not share its name with a NUT device"))
            continue
        server = Server(name, section.get("desc") or "", origin, [])
        for entry in section.entries:
            where = Origin(conf.path, entry.line)
            if entry.key.startswith(PSU_PREFIX):
                _add_psu(chain, server, entry.key[len(PSU_PREFIX):], entry.value, where)
            elif entry.key not in SERVER_KEYS:
                chain.problems.append(
                    Problem(where, f"[{name}]: unknown setting {entry.key!r} (PSUs are written psu.NAME = PARENT)")
                )
        bmc = section.entry("bmc")
        if bmc is not None:
            try:
                server.bmc = split_host_port(bmc.value or "", IPMI_PORT)
            except ValueError as error:
                chain.problems.append(Problem(Origin(conf.path, bmc.line), f"[{name}] bmc: {error}"))
        server.bmc_username = section.get("bmc_username") or ""
        server.bmc_password = section.get("bmc_password") or ""
        if not server.psus:
            chain.problems.append(Problem(origin, f"[{name}] has no power supply (psu.NAME = PARENT)"))
        chain.servers[name] = server
        chain.links[name] = Link(name, "server", None, origin, label=name, desc=server.desc)


def _add_psu(chain, server, psu, value, origin):
    if not psu:
        chain.problems.append(Problem(origin, f"[{server.name}]: `psu.` needs a name (psu.psu1 = PARENT)"))
        return
    psu_id = f"{server.name}:{psu}"
    try:
        ref = parse_parent(value or "")
    except ValueError as error:
        chain.problems.append(Problem(origin, f"[{server.name}] psu.{psu} = {value}: {error}"))
        return
    parent = chain.resolve_parent(ref, origin, f"[{server.name}] psu.{psu}")
    if parent is None:
        return
    chain.links[psu_id] = Link(psu_id, "psu", parent, origin, label=psu, server=server.name)
    server.psus.append(psu_id)
