"""The running lab's power chain, written as an admin would write it.

The lab's upsd reads its own ups.conf, written by infrapower.lab.nut; NUT
2.8.0's drivers refuse settings they do not know, so `parent =` lines
cannot go there.  This writes a copy of that ups.conf with a `parent =`
line per device (each UPS on main, each PDU on its UPS: the lab's wiring)
and the servers file (each server's PSUs on their outlets, its BMC, and
the PDUs no upsd serves as SNMP PDUs), into
`<lab>/chain/`, ready for `infrapower chain --config-dir <lab>/chain`.
Ports change at every `lab up`: write again after one.
"""

from pathlib import Path

from infrapower.chain.model import MAIN
from infrapower.chain.upsconf import UpsConf, quote

CHAIN_DIR = "chain"
UPS_CONF = "ups.conf"
SERVERS_CONF = "servers.conf"


def write_config(lab, directory=None, other_upsds=(), psu_devices=False):
    """Write ups.conf and servers.conf for `lab` (an infrapower.lab Lab);
    returns the directory.  `other_upsds` names extra upsds of the lab
    (infrapower.lab.nut.start_upsd with `devices`): their devices are
    described as served there only, as on a second NUT server (its own
    ups.conf copy, a `[@host:port]` section, parents `dev:N@host:port`).
    `psu_devices`: the spec's form where the lab serves its PSUs as
    ipmi-psu devices: each gets `parent =` its outlet (`@localhost`), and
    its server leaves servers.conf (which keeps the fencing user)."""
    from infrapower.lab import bmc, nut, pdus

    topology = lab.rack.topology()
    target = Path(directory) if directory else lab.path(CHAIN_DIR)
    target.mkdir(parents=True, exist_ok=True)
    home = f"{nut.HOST}:{lab.port('upsd')}"

    # Where each device is served: "" on the main upsd, else "@host:port".
    confs = {name: UpsConf.read(nut.conf_dir(lab, name) / UPS_CONF) for name in other_upsds}
    at = {name: f"@{nut.HOST}:{lab.port(name)}" for name in other_upsds}
    served_by = {device: at[name] for name, conf in confs.items() for device in conf.sections}

    sections = []
    for name, conf in confs.items():
        where = at[name]
        _with_parents(conf, topology, served_by, where, home)
        conf.path = str(target / f"{name}-{UPS_CONF}")
        conf.write()
        sections += [f"[{where}]", f"\tups_conf = {quote(Path(conf.path).name)}", ""]

    ups_conf = UpsConf.read(nut.conf_dir(lab) / UPS_CONF)
    ups_conf.keep_sections([name for name in ups_conf.sections if name not in served_by])
    _with_parents(ups_conf, topology, served_by, "", home)
    if psu_devices:
        described = _psu_parents(lab, ups_conf, topology)
    else:
        # servers.conf describes every server: the lab's PSU devices, if it
        # serves any, would describe them twice
        ups_conf.keep_sections([n for n, section in ups_conf.sections.items() if section.get("driver") != "ipmi-psu"])
        described = set()
    ups_conf.path = str(target / UPS_CONF)
    ups_conf.write()

    lines = [
        "# The lab's servers and their power supplies (infrapower.chain.lab).",
        f"upsd = {home}",
        f"fence_nut_username = {quote(nut.FENCER_USER)}",
        f"fence_nut_password = {quote(nut.FENCER_PASSWORD)}",
        "",
        *sections,
    ]
    ports = lab.ports()
    for name, pdu in topology["pdus"].items():
        if pdu.get("nut", True) or f"snmp:{name}" not in ports:
            continue
        # A PDU no upsd serves (`nut: False`): the servers file declares it
        # as an SNMP PDU, read and switched with fence_snmp_pdu's code.
        lines += [f"[{name}]", f"\tsnmp = 127.0.0.1:{ports[f'snmp:{name}']}",
                  f"\tcommunity = {quote(pdus.WRITE_COMMUNITY)}", f"\tparent = {pdu['ups']}", ""]
    for server, spec in topology["servers"].items():
        if server in described:
            continue  # ups.conf's PSU devices describe it
        lines.append(f"[{server}]")
        lines.append(f"\tdesc = {quote(spec.get('role', ''))}")
        for psu, outlet in spec["psus"].items():
            device, _, number = outlet.partition(":")
            # a daisy-chained unit's outlet, `pdu3:2.5` in the rack, is
            # written unit:outlet, as fence_snmp_pdu and fence_nut read it
            outlet = f"{device}:{number.replace('.', ':')}"
            lines.append(f"\tpsu.{psu} = {outlet}{served_by.get(device, '')}")
        if f"bmc:{server}" in ports:
            lines.append(f"\tbmc = 127.0.0.1:{ports[f'bmc:{server}']}")
            lines.append(f"\tbmc_username = {quote(bmc.ADMIN_USER)}")
            lines.append(f"\tbmc_password = {quote(bmc.ADMIN_PASSWORD)}")
        lines.append("")
    (target / SERVERS_CONF).write_text("\n".join(lines))
    return target


def _with_parents(ups_conf, topology, served_by, here, home):
    """The lab's wiring as `parent =` lines: each UPS on main, each PDU on
    its UPS, `@host:port` added when the UPS is served elsewhere than
    `here` (the file's own upsd: "" for the main one at `home`)."""
    for name in ups_conf.sections:
        if name in topology["upses"]:
            ups_conf.set(name, "parent", MAIN)
        elif name in topology["pdus"]:
            ups = topology["pdus"][name]["ups"]
            where = served_by.get(ups, "")
            suffix = "" if where == here else where or f"@{home}"
            ups_conf.set(name, "parent", ups + suffix)


def _psu_parents(lab, ups_conf, topology):
    """`parent =` for each ipmi-psu device of the lab's ups.conf, found by
    its BMC (`port`) and `psu = N` (the BMC's supplies in topology order);
    returns the servers whose every PSU is such a device."""
    from infrapower.chain.model import split_host_port
    from infrapower.lab.bmc_data import numbered_psus
    from infrapower.ports import IPMI_PORT

    by_bmc = {port: name.split(":", 1)[1] for name, port in lab.ports().items() if name.startswith("bmc:")}
    covered = {}
    for name, section in ups_conf.sections.items():
        if section.get("driver") != "ipmi-psu":
            continue
        try:
            _host, port = split_host_port(section.get("port") or "", IPMI_PORT)
        except ValueError:
            continue
        server = by_bmc.get(port)
        if server is None or server not in topology["servers"]:
            continue
        psus = dict(numbered_psus(topology, server))
        psu = psus.get(int(section.get("psu"))) if (section.get("psu") or "").isdigit() else None
        if psu is None:
            continue
        ups_conf.set(name, "parent", f"{topology['servers'][server]['psus'][psu]}@localhost")
        covered.setdefault(server, set()).add(psu)
    return {server for server, psus in covered.items() if psus == set(topology["servers"][server]["psus"])}
