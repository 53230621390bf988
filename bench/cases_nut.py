"""fence_nut against NUT's own clients, on the lab's real upsd + snmp-ups
(pollinterval 1, pollfreq 0) over the simulated eaton_epdu pdu2.

Requests per action (issue 18): ours from `-v` ("upsd requests: N": a
pipelined batch, such as the login or one poll of every plug, is one);
a reboot's count depends on how many polls the driver's pollinterval takes.

Issue targets: status ≤ 0.15 s median (an absolute figure: read it in the
"ours" column; the ratio against `upsc` is reported as measured); reboot of
one outlet within 2 driver polls + 0.5 s = 2.5 s, against `upscmd -w` +
polling `upsc` until the status reads back, off then on, polled as often
as the agent polls (every 50 ms).

    python3 bench/bench.py bench/cases_nut.py
"""

import contextlib
import shlex
import tempfile

from bench import Case, agent_requests

AGENT = "/usr/sbin/fence_nut"
PDU, OUTLET = "pdu2", 3
POLL_SECONDS = 0.05  # infrapower.fence.POLL_INTERVAL


@contextlib.contextmanager
def session():
    from infrapower import lab as lab_module

    with tempfile.TemporaryDirectory(prefix="bench-nut-") as directory:
        lab = lab_module.up(directory, components=("pdus", "nut"))
        try:
            yield lab
        finally:
            lab_module.down(directory)


def _peer_reboot(target, admin_user, admin_password):
    """upscmd -w waits for the driver's TRACKING result, not for the outlet:
    the status must be polled, as any careful script would.  (The peer's
    password is in argv: upscmd has no other way but a prompt.)"""

    def switch(state):
        command = shlex.join(["upscmd", "-w", "-u", admin_user, "-p", admin_password, target, f"outlet.{OUTLET}.load.{state}"])
        read = shlex.join(["upsc", target, f"outlet.{OUTLET}.status"])
        return f'{command} >/dev/null 2>&1 && until [ "$({read} 2>/dev/null)" = {state} ]; do sleep {POLL_SECONDS}; done'

    return ["bash", "-c", f"{switch('off')} && {switch('on')}"]


def cases(context=None):
    from infrapower.lab import nut

    lab = context
    port = lab.port("upsd")
    target = f"{PDU}@{nut.HOST}:{port}"
    options = (
        f"ip={nut.HOST}\nipport={port}\nusername={nut.FENCER_USER}\npassword={nut.FENCER_PASSWORD}\n"
        f"plug={PDU}:{OUTLET}\npower_timeout=10\n"
    )
    return [
        Case(
            "nut status (one outlet, snmp-ups) vs upsc",
            ours=[AGENT],
            stdin=options + "action=status\n",
            peer=["upsc", target, f"outlet.{OUTLET}.status"],
            peer_stdin="",
            expect_rc=(0,),
            runs=20,
            warmup=2,
            requests=agent_requests("upsd requests"),
        ),
        Case(
            "nut reboot (one outlet, snmp-ups pollinterval 1) vs upscmd -w + upsc polling",
            ours=[AGENT],
            stdin=options + "action=reboot\n",
            peer=_peer_reboot(target, nut.ADMIN_USER, nut.ADMIN_PASSWORD),
            peer_stdin="",
            expect_rc=(0,),
            runs=6,
            warmup=1,
            timeout=60.0,
            requests=agent_requests("upsd requests"),
        ),
    ]
