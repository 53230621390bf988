"""Fencing under load (issue 18): many agents started at once against one
device, ours and the peer in the same run, and a slow-responding PDU.

- 64 fence_snmp_pdu at once, one plug each, on one simulated APC PDU (64
  outlets), against 64 fence_apc_snmp the same way: target ≤ 0.8× the
  peer's wall time, every run correct (bench/burst.py fails the command
  if any copy exits wrong).
- 64 fence_nut status at once through one upsd (snmp-ups over that PDU),
  against 64 `upsc` reads of the same outlets (a C client: measured);
  64 fence_nut reboots at once (an Eaton ePDU of 64 outlets under
  snmp-ups) against 64 `upscmd -w` + `upsc` polling scripts.
- A PDU whose SNMP agent answers each request 50 ms late, one after
  another (the lab's `slow` PDU fault, `reply_delay` in the topology), as
  many embedded agents do: what round trips cost where they are slow.

Requests: per action, from the first copy's `-v` (bench.py's counting run).

    python3 bench/bench.py bench/cases_load.py
"""

import contextlib
import shlex
import sys
import tempfile
from pathlib import Path

from bench import Case, agent_requests, net_snmp_requests

OURS = "/usr/sbin/fence_snmp_pdu"
PEER = "/usr/sbin/fence_apc_snmp"
NUT_AGENT = "/usr/sbin/fence_nut"
BURST = [sys.executable, str(Path(__file__).with_name("burst.py"))]
AGENTS_AT_ONCE = 64
SLOW_REPLY_SECONDS = 0.05
APC = {"mapping": "apc_pdu", "sysoid": ".1.3.6.1.4.1.318.1.3.4.5", "units": 1, "ups": "ups1", "switch_delay": 0.0}


def topologies():
    from infrapower.lab.rack import default_topology

    busy = default_topology()
    busy["pdus"]["pdu1"] = dict(APC, outlets=AGENTS_AT_ONCE)
    # NUT switches no APC outlet: 64 reboots through upsd go to an Eaton ePDU.
    busy["pdus"]["pdu3"] = {"mapping": "eaton_epdu", "outlets": AGENTS_AT_ONCE, "units": 1, "ups": "ups2",
                            "switch_delay": 0.0}
    slow = default_topology()
    slow["servers"] = {}
    slow["pdus"] = {"slowpdu": dict(APC, outlets=24, reply_delay=SLOW_REPLY_SECONDS)}
    slow["upses"] = {"ups1": {}}
    return busy, slow


@contextlib.contextmanager
def session():
    from infrapower import lab as lab_module

    busy, slow = topologies()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as directory:
        busy_dir, slow_dir = Path(directory, "busy"), Path(directory, "slow")
        try:
            busy_lab = lab_module.up(busy_dir, topology=busy, components=("pdus", "nut"), ready_seconds=120)
            slow_lab = lab_module.up(slow_dir, topology=slow, components=("pdus",), ready_seconds=120)
            yield busy_lab, slow_lab
        finally:
            lab_module.down(slow_dir)
            lab_module.down(busy_dir)


def _stdin(port, **options):
    options = dict({"ip": "127.0.0.1", "ipport": port, "community": "private", "snmp_version": "1"}, **options)
    return "".join(f"{key}={value}\n" for key, value in options.items())


def _peer_nut_reboot(target):
    """What a careful script does with NUT's own tools (as cases_nut.py):
    `upscmd -w` off, poll `upsc` until it reads off, then the same for on.
    The admin's password is in argv: upscmd has no other way."""
    from infrapower.lab import nut

    def switch(state):
        # $1 is the outlet number: bash's first argument after the script name
        login = " ".join(shlex.quote(word) for word in ("-u", nut.ADMIN_USER, "-p", nut.ADMIN_PASSWORD, target))
        read = f'upsc {shlex.quote(target)} "outlet.$1.status"'
        return (f'upscmd -w {login} "outlet.$1.load.{state}" >/dev/null 2>&1 && '
                f'until [ "$({read} 2>/dev/null)" = {state} ]; do sleep 0.05; done')

    return ["bash", "-c", f"{switch('off')} && {switch('on')}", "peer-reboot", "{plug}"]


def _burst(argv, plugs, expect="0"):
    return BURST + ["--plugs", plugs, "--expect", expect, "--"] + argv


def cases(context):
    from infrapower.lab import nut

    busy, slow = context
    pdu = busy.port("snmp:pdu1")
    plugs = f"1-{AGENTS_AT_ONCE}"
    snmp_counts = {"requests": agent_requests("SNMP requests"), "peer_requests": net_snmp_requests}
    upsd = busy.port("upsd")
    nut_options = (
        f"ip={nut.HOST}\nipport={upsd}\nusername={nut.FENCER_USER}\npassword={nut.FENCER_PASSWORD}\n"
        "plug=pdu1:{plug}\npower_timeout=20\naction=status\n"
    )
    slow_pdu = slow.port("snmp:slowpdu")
    n = AGENTS_AT_ONCE
    return [
        Case(f"{n}× snmp_pdu status at once (one PDU, {n} plugs)", ours=_burst([OURS], plugs, "0,2"),
             peer=_burst([PEER], plugs, "0,2"), stdin=_stdin(pdu, action="status", plug="{plug}"), target=0.8,
             runs=3, warmup=1, timeout=180, interleave=True, **snmp_counts),
        Case(f"{n}× snmp_pdu reboot at once (one PDU, {n} plugs)", ours=_burst([OURS], plugs),
             peer=_burst([PEER], plugs), stdin=_stdin(pdu, action="reboot", plug="{plug}", power_timeout=30),
             target=0.8, runs=3, warmup=1, timeout=300, interleave=True, **snmp_counts),
        Case(f"{n}× nut status at once through one upsd vs {n}× upsc", ours=_burst([NUT_AGENT], f"1-{n}", "0,2"),
             # upsc gives up on a connection upsd drops under the burst (seen: 1 of 64,
             # "Server disconnected"): counted in the figure, not a failed case.
             peer=_burst(["upsc", f"pdu1@{nut.HOST}:{upsd}", "outlet.{plug}.status"], f"1-{n}", "0,1"),
             stdin=nut_options, peer_stdin="", target=0.8, runs=3, warmup=1, timeout=180, interleave=True,
             requests=agent_requests("upsd requests")),
        Case(f"{n}× nut reboot at once through one upsd (snmp-ups pollinterval 1) vs {n}× upscmd -w + upsc polling",
             # NUT's tools give up now and then under the burst (seen: 1 of 64): counted, as for upsc.
             ours=_burst([NUT_AGENT], f"1-{n}"), peer=_burst(_peer_nut_reboot(f"pdu3@{nut.HOST}:{upsd}"), f"1-{n}", "0,1"),
             stdin=nut_options.replace("pdu1:", "pdu3:").replace("action=status", "action=reboot"), peer_stdin="",
             target=0.8, runs=2, warmup=1, timeout=300, interleave=True, requests=agent_requests("upsd requests")),
        Case("slow PDU (50 ms a request): status", ours=[OURS], peer=[PEER],
             stdin=_stdin(slow_pdu, action="status", plug="5"), target=0.6, runs=5, warmup=1, **snmp_counts),
        Case("slow PDU (50 ms a request): reboot", ours=[OURS], peer=[PEER],
             stdin=_stdin(slow_pdu, action="reboot", plug="6"), target=0.6, runs=5, warmup=1, **snmp_counts),
        Case("slow PDU (50 ms a request): list-status (24 outlets)", ours=[OURS], peer=[PEER],
             stdin=_stdin(slow_pdu, action="list-status"), target=0.5, runs=5, warmup=1, **snmp_counts),
        Case("slow PDU (50 ms a request): 8× reboot at once", ours=_burst([OURS], "11-18"),
             peer=_burst([PEER], "11-18"), stdin=_stdin(slow_pdu, action="reboot", plug="{plug}", power_timeout=30),
             target=0.8, runs=3, warmup=1, timeout=300, interleave=True, **snmp_counts),
        # SNMPv1 without mib: 6 requests a reboot against 7, so a PDU that
        # serialises requests caps the ratio near 6/7.  SNMPv2c (the states
        # ride with the detection) or mib= make it 5.
        Case("slow PDU (50 ms a request): 8× reboot at once, SNMPv2c", ours=_burst([OURS], "11-18"),
             peer=_burst([PEER], "11-18"),
             stdin=_stdin(slow_pdu, action="reboot", plug="{plug}", power_timeout=30, snmp_version="2c"),
             target=0.8, runs=3, warmup=1, timeout=300, interleave=True, **snmp_counts),
        Case("slow PDU (50 ms a request): 8× reboot at once, SNMPv1 with mib=apc_pdu", ours=_burst([OURS], "11-18"),
             peer=_burst([PEER], "11-18"),
             stdin=_stdin(slow_pdu, action="reboot", plug="{plug}", power_timeout=30, mib="apc_pdu"),
             peer_stdin=_stdin(slow_pdu, action="reboot", plug="{plug}", power_timeout=30),
             target=0.8, runs=3, warmup=1, timeout=300, interleave=True, **snmp_counts),
    ]
