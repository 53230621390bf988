"""The PowerChain over a big rack (issue 18): `infrapower chain --live`
and `--plan` over a running `lab up --servers 200` (400 PSUs on 10 PDUs,
Eaton/HPE daisy chains read over SNMP, APC PDUs and 10 UPSes through one
upsd, 200 BMCs), every read in parallel with bounded concurrency
(infrapower.chain.live.LIVE_CONCURRENCY).  Targets: --live ≤ 3 s,
--plan ≤ 5 s (absolute: no peer tool reads a power chain); peak memory of
the command beside; the rack's own memory (every process of the lab) on
stderr when the session starts.

    python3 bench/bench.py bench/cases_scale.py
"""

import contextlib
import sys
import tempfile
from pathlib import Path

from bench import Case

SERVERS = 200


def lab_memory_mib(lab):
    """Resident memory of every process of the lab, summed (MiB), and
    the process count."""
    total, count = 0, 0
    for name in lab.process_names():
        pid = lab.pid(name)
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except (OSError, TypeError):
            continue
        rss = [line for line in status.splitlines() if line.startswith("VmRSS:")]
        if rss:
            total += int(rss[0].split()[1])
            count += 1
    return total / 1024, count


@contextlib.contextmanager
def session():
    from infrapower import lab as lab_module
    from infrapower.lab import bigrack

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as directory:
        try:
            running = lab_module.up(directory, topology=bigrack.topology(SERVERS),
                                    ready_seconds=bigrack.ready_seconds(SERVERS))
            mib, count = lab_memory_mib(running)
            print(f"{SERVERS}-server lab: {count} processes, {mib:.0f} MiB resident in all", file=sys.stderr)
            yield running
        finally:
            lab_module.down(directory)


def cases(context):
    chain = [sys.executable, "-m", "infrapower.cli.main", "chain", "--lab", str(context.dir)]
    return [
        Case(f"chain --live over {SERVERS} servers (400 PSUs, 10 PDUs, 10 UPSes, 200 BMCs)", ours=chain + ["--live"],
             runs=5, warmup=1, timeout=120, memory=True),
        Case(f"chain --plan over {SERVERS} servers", ours=chain + ["--plan"], runs=5, warmup=1, timeout=120,
             memory=True),
    ]
