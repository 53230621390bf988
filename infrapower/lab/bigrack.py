"""A rack of N servers for work at scale (issue 18):
`infrapower lab up --servers N`.

Servers `s001`, `s002`, ... have two PSUs each, psu1 on an A-side PDU and
psu2 on a B-side PDU, each side behind its own UPS, in rows of
SERVERS_PER_ROW servers.  The PDUs mix NUT mappings as a real data centre
does: the A side is an Eaton ePDU daisy chain (two units of 24 outlets,
`pdu1a:2.5` is outlet 5 of unit 2), the B side alternates an APC rack PDU
(one unit of 48 outlets: APC's mapping has no daisy chains) and an HPE
ePDU daisy chain.  The peers are the same as the small lab's: one snmpsim
per PDU, one upsd with one lab UPS driver per UPS and one snmp-ups per
single-unit PDU, one ipmi_sim per server.

The daisy chains are read and switched over SNMP (`nut: False`: no
snmp-ups), as fence_snmp_pdu does (`plug=2:5` is outlet 5 of unit 2):
NUT 2.8.0's snmp-ups cannot serve the Eaton chains (docs/fence_nut.md,
"Daisy chains"; fence_nut and the PowerChain do read a chain snmp-ups
serves, as `device.N.outlet.M`).  `infrapower chain --lab` declares
them in the servers file as SNMP PDUs.

What it leaves out at scale: NUT's ipmi-psu devices (one driver per PSU:
800 processes for 200 servers' PSUs would be the machine's whole memory;
fence_ipmi_psu and the PowerChain read the BMCs directly).
"""

from infrapower.lab.rack import outlet_id

SERVERS_PER_ROW = 48
UNIT_OUTLETS = 24  # outlets per daisy-chained unit
APC_SYSOID = ".1.3.6.1.4.1.318.1.3.4.5"  # an AP79xx switched rack PDU


def server_name(number):
    return f"s{number:03d}"


def _side_b(row):
    """Odd rows: an APC rack PDU; even rows: an HPE ePDU daisy chain."""
    if row % 2:
        return {"mapping": "apc_pdu", "sysoid": APC_SYSOID, "outlets": SERVERS_PER_ROW, "units": 1}
    return {"mapping": "hpe_epdu", "outlets": UNIT_OUTLETS, "units": SERVERS_PER_ROW // UNIT_OUTLETS}


def _outlet(pdu_name, pdu, index):
    """The rack's name of the PDU's `index`-th outlet (0-based), across
    its daisy-chained units."""
    unit, number = divmod(index, pdu["outlets"])
    return outlet_id(pdu_name, number + 1, unit + 1)


def topology(servers):
    """The topology of a rack of `servers` servers (infrapower.lab.rack's
    shape, plus `nut_psu_devices: False`)."""
    if servers < 1:
        raise ValueError("a rack needs at least one server")
    rows = (servers + SERVERS_PER_ROW - 1) // SERVERS_PER_ROW
    pdus, upses, machines = {}, {}, {}
    for row in range(1, rows + 1):
        side_a = {"mapping": "eaton_epdu", "outlets": UNIT_OUTLETS, "units": SERVERS_PER_ROW // UNIT_OUTLETS}
        for side, pdu in (("a", side_a), ("b", _side_b(row))):
            ups = f"ups{row}{side}"
            pdus[f"pdu{row}{side}"] = dict(pdu, ups=ups, switch_delay=0.0, nut=pdu["units"] == 1)
            upses[ups] = {}
    for index in range(servers):
        row, slot = divmod(index, SERVERS_PER_ROW)
        psus = {
            f"psu{number}": _outlet(f"pdu{row + 1}{side}", pdus[f"pdu{row + 1}{side}"], slot)
            for number, side in ((1, "a"), (2, "b"))
        }
        machines[server_name(index + 1)] = {"role": f"row {row + 1}", "psus": psus}
    return {"servers": machines, "pdus": pdus, "upses": upses, "nut_psu_devices": False}


def ready_seconds(servers):
    """How long `lab up` may take for `servers` servers before it gives up:
    generous: a 2-core machine starts 200 in 5-10 s, but other work on it
    can make that many times longer."""
    return 60.0 + servers * 0.5


def summary(lab):
    """`lab up --servers N` as a person reads it: the rack in a few lines
    (the full table of hundreds of servers is `lab status`)."""
    topology = lab.rack.topology()
    servers = topology["servers"]
    lines = [f"lab: {lab.dir}", f"servers: {len(servers)} ({', '.join(list(servers)[:3])}, ... {list(servers)[-1]}), two PSUs each"]
    for name, pdu in topology["pdus"].items():
        units = pdu.get("units", 1)
        chain = f", daisy chain of {units} units" if units > 1 else ""
        path = "upsd (snmp-ups)" if pdu.get("nut", True) else "SNMP only"
        lines.append(f"  {name}: {pdu['mapping']}, {pdu['outlets'] * units} outlets{chain}, on {pdu['ups']}; "
                     f"SNMP udp {lab.ports().get('snmp:' + name)}, {path}")
    ports = lab.ports()
    lines.append(f"upsd: {ports.get('upsd')} (UPSes {', '.join(topology['upses'])})")
    lines.append(f"BMCs: {sum(1 for key in ports if key.startswith('bmc:'))} ipmi_sim")
    lines.append(f"power chain: infrapower chain --lab {lab.dir} --live")
    return lines
