"""fence_snmp_pdu against fence-agents' fence_apc_snmp on the same
simulated APC rack PDU (24 outlets), as issue 3 §4 asks; plus the scale
case (list-status of a 4-unit Marlin daisy chain, 48 outlets each), which
has no peer and is judged on its own (≤ 0.5 s).

Both agents get their options on stdin, SNMP v1 with the write community
unless the case says v3, as a migrated configuration would pass them.

Requests per action (issue 18): ours from `-v` ("SNMP requests: N", the
Session's count), fence_apc_snmp's from the net-snmp commands its `-v`
logs, counted as packets (see bench.net_snmp_requests; its SNMPv3 count is
left unknown: each net-snmp process also discovers the engine).

    python3 bench/bench.py bench/cases_snmp_pdu.py
"""

import contextlib
import tempfile

from bench import Case, agent_requests, net_snmp_requests

from infrapower import lab as lab_module
from infrapower.lab.pdus import V3_USER
from infrapower.lab.rack import default_topology

OURS = ["/usr/sbin/fence_snmp_pdu"]
PEER = ["/usr/sbin/fence_apc_snmp"]


def topology():
    rack = default_topology()
    rack["pdus"]["pdu1"]["outlets"] = 24
    rack["pdus"]["chain"] = {"mapping": "eaton_epdu", "outlets": 48, "units": 4, "ups": "ups1", "switch_delay": 0.0}
    return rack


@contextlib.contextmanager
def session():
    with tempfile.TemporaryDirectory(prefix="bench-snmp-pdu-") as directory:
        running = lab_module.up(directory, topology=topology(), components=("pdus",), ready_seconds=120)
        try:
            yield running
        finally:
            lab_module.down(directory)


def _stdin(port, **options):
    return "".join(f"{key}={value}\n" for key, value in dict({"ip": "127.0.0.1", "ipport": port}, **options).items())


def cases(context):
    apc = context.port("snmp:pdu1")
    v1 = {"community": "private", "snmp_version": "1"}
    v3 = {
        "snmp_version": "3", "username": V3_USER["user"], "snmp_sec_level": "authPriv",
        "snmp_auth_prot": V3_USER["auth_proto"], "password": V3_USER["auth_key"],
        "snmp_priv_prot": V3_USER["priv_proto"], "snmp_priv_passwd": V3_USER["priv_key"],
    }
    counted = {"requests": agent_requests("SNMP requests"), "peer_requests": net_snmp_requests}
    v2c = {"community": "private", "snmp_version": "2c"}
    return [
        Case("snmp_pdu status", ours=OURS, peer=PEER, stdin=_stdin(apc, action="status", plug="12", **v1), target=0.6, **counted),
        Case("snmp_pdu status, mib forced", ours=OURS, peer=PEER, stdin=_stdin(apc, action="status", plug="12", mib="apc_pdu", **v1),
             peer_stdin=_stdin(apc, action="status", plug="12", **v1), target=0.6, **counted),
        Case("snmp_pdu list-status (24 outlets)", ours=OURS, peer=PEER, stdin=_stdin(apc, action="list-status", **v1), target=0.5,
             **counted),
        Case("snmp_pdu list-status (24 outlets, v2c)", ours=OURS, peer=PEER, stdin=_stdin(apc, action="list-status", **v2c),
             target=0.5, **counted),
        Case("snmp_pdu reboot", ours=OURS, peer=PEER, stdin=_stdin(apc, action="reboot", plug="20", **v1), target=0.6, runs=5, warmup=1,
             **counted),
        Case("snmp_pdu reboot of two plugs", ours=OURS, peer=PEER, stdin=_stdin(apc, action="reboot", plug="21,22", **v1), target=0.6,
             runs=5, warmup=1, **counted),
        Case("snmp_pdu status SNMPv3 authPriv", ours=OURS, peer=PEER, stdin=_stdin(apc, action="status", plug="12", **v3), target=0.6,
             requests=counted["requests"]),
        Case("snmp_pdu metadata", ours=OURS + ["-o", "metadata"], peer=PEER + ["-o", "metadata"], target=1.1),
        Case("snmp_pdu list-status 4x48 daisy chain (v1)", ours=OURS,
             stdin=_stdin(context.port("snmp:chain"), action="list-status", **v1), requests=counted["requests"]),
        Case("snmp_pdu list-status 4x48 daisy chain (v2c)", ours=OURS,
             stdin=_stdin(context.port("snmp:chain"), action="list-status", **v2c), requests=counted["requests"]),
    ]
