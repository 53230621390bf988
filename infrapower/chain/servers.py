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

Every `psu.NAME` key is a power supply whose value is its parent, in the
spec's grammar `device[:outlet][@hostname[:port]]`.
"""

from infrapower.chain.model import Link, Origin, Problem, Server, parse_parent, split_host_port

PSU_PREFIX = "psu."
SERVER_KEYS = {"desc", "bmc", "bmc_username", "bmc_password"}
GLOBAL_KEYS = {
    "upsd",
    "fence_nut_username",
    "fence_nut_password",
    "fence_nut_password_script",
    "snmp_community",
}
IPMI_PORT = 623


def add_servers(chain, conf):
    """Add every server of the servers file and its PSUs to `chain`."""
    for entry in conf.globals.entries:
        if entry.key not in GLOBAL_KEYS:
            chain.problems.append(
                Problem(Origin(conf.path, entry.line), f"unknown global setting {entry.key!r} (known: {', '.join(sorted(GLOBAL_KEYS))})")
            )
    for name, section in conf.sections.items():
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
