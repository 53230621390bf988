"""fence_ipmi_psu against fence_ipmilan (ipmitool, `--lanplus -C 3`) on the
same lab BMC (ipmi_sim, nc2), same options on stdin.

Issue targets (ratios of medians, one run): reboot ≤ 0.3×, status ≤ 1.0×,
metadata ≤ 1.1×.  fence_ipmilan's reboot sleeps power_wait (2 s) twice;
ours polls the chassis state instead.

    python3 bench/bench.py bench/cases_ipmi_psu.py
"""

import contextlib
import tempfile

from bench import Case, agent_requests

AGENT = "/usr/sbin/fence_ipmi_psu"
PEER = "/usr/sbin/fence_ipmilan"
SERVER = "nc2"


@contextlib.contextmanager
def session():
    from infrapower import lab as lab_module

    with tempfile.TemporaryDirectory(prefix="bench-ipmi-") as directory:
        lab = lab_module.up(directory, components=("bmc",))
        try:
            yield lab
        finally:
            lab_module.down(directory)


def cases(context=None):
    from infrapower.lab import bmc

    lab = context
    # The same stdin for both: lanplus and cipher are fence_ipmilan's
    # options, accepted by ours as a drop-in.
    options = (
        f"ip=127.0.0.1\nipport={lab.port(f'bmc:{SERVER}')}\nusername={bmc.ADMIN_USER}\n"
        f"password={bmc.ADMIN_PASSWORD}\nlanplus=1\ncipher={bmc.CIPHER_SUITE}\n"
    )
    # fence_ipmilan imports the deprecated `pipes` module: keep its warning
    # out of the timing's stderr, it changes nothing else.
    quiet = {"PYTHONWARNINGS": "ignore::DeprecationWarning"}
    return [
        Case(
            "ipmi status vs fence_ipmilan",
            ours=[AGENT],
            peer=[PEER],
            stdin=options + "action=status\n",
            env=quiet,
            expect_rc=(0,),
            target=1.0,
            runs=20,
            warmup=2,
            requests=agent_requests("IPMI requests"),
        ),
        Case(
            "ipmi reboot (onoff) vs fence_ipmilan",
            ours=[AGENT],
            peer=[PEER],
            stdin=options + "action=reboot\n",
            env=quiet,
            expect_rc=(0,),
            target=0.3,
            runs=5,
            warmup=1,
            timeout=60.0,
            requests=agent_requests("IPMI requests"),
        ),
        Case(
            "ipmi metadata vs fence_ipmilan",
            ours=[AGENT, "-o", "metadata"],
            peer=[PEER, "-o", "metadata"],
            env=quiet,
            expect_rc=(0,),
            target=1.1,
            runs=20,
            warmup=2,
        ),
        Case(
            "ipmi list-status (PSU FRU + sensors), measured",
            ours=[AGENT],
            stdin=options + "action=list-status\n",
            expect_rc=(0,),
            runs=10,
            warmup=1,
            requests=agent_requests("IPMI requests"),
        ),
    ]
