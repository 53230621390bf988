"""The running lab's power chain, written as an admin would write it.

The lab's upsd reads its own ups.conf, written by infrapower.lab.nut; NUT
2.8.0's drivers refuse settings they do not know, so `parent =` lines
cannot go there.  This writes a copy of that ups.conf with a `parent =`
line per device (each UPS on main, each PDU on its UPS: the lab's wiring)
and the servers file (each server's PSUs on their outlets, its BMC), into
`<lab>/chain/`, ready for `infrapower chain --config-dir <lab>/chain`.
Ports change at every `lab up`: write again after one.
"""

from pathlib import Path

from infrapower.chain.model import MAIN
from infrapower.chain.upsconf import UpsConf, quote

CHAIN_DIR = "chain"
UPS_CONF = "ups.conf"
SERVERS_CONF = "servers.conf"


def write_config(lab, directory=None):
    """Write ups.conf and servers.conf for `lab` (an infrapower.lab Lab);
    returns the directory."""
    from infrapower.lab import bmc, nut

    topology = lab.rack.topology()
    target = Path(directory) if directory else lab.path(CHAIN_DIR)
    target.mkdir(parents=True, exist_ok=True)

    ups_conf = UpsConf.read(nut.conf_dir(lab) / UPS_CONF)
    ups_conf.path = str(target / UPS_CONF)
    for ups in topology["upses"]:
        ups_conf.set(ups, "parent", MAIN)
    for pdu, spec in topology["pdus"].items():
        if pdu in ups_conf.sections:
            ups_conf.set(pdu, "parent", spec["ups"])
    ups_conf.write()

    lines = [
        "# The lab's servers and their power supplies (infrapower.chain.lab).",
        f"upsd = {nut.HOST}:{lab.port('upsd')}",
        f"fence_nut_username = {quote(nut.FENCER_USER)}",
        f"fence_nut_password = {quote(nut.FENCER_PASSWORD)}",
        "",
    ]
    ports = lab.ports()
    for server, spec in topology["servers"].items():
        lines.append(f"[{server}]")
        lines.append(f"\tdesc = {quote(spec.get('role', ''))}")
        for psu, outlet in spec["psus"].items():
            lines.append(f"\tpsu.{psu} = {outlet}")
        if f"bmc:{server}" in ports:
            lines.append(f"\tbmc = 127.0.0.1:{ports[f'bmc:{server}']}")
            lines.append(f"\tbmc_username = {quote(bmc.ADMIN_USER)}")
            lines.append(f"\tbmc_password = {quote(bmc.ADMIN_PASSWORD)}")
        lines.append("")
    (target / SERVERS_CONF).write_text("\n".join(lines))
    return target
