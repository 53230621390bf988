"""A big rack (issue 18): `infrapower lab up --servers 200` until every
peer answers (200 ipmi_sim, 10 snmpsim PDUs, upsd with 10 UPSes and the
single-unit PDUs' snmp-ups), each run followed by `lab down` (not timed).
Target: ≤ 30 s on the 2-core lab machine (an absolute figure: no peer).
The chain over a running rack of that size: bench/cases_scale.py.

    python3 bench/bench.py bench/cases_scale_lab.py
"""

import shlex
import sys
import tempfile

from bench import Case

SERVERS = 200


def cases(context=None):
    directory = tempfile.mkdtemp(prefix="bench-bigrack-")
    lab = [sys.executable, "-m", "infrapower.cli.main", "lab"]
    return [
        Case(f"lab up --servers {SERVERS} (to every peer answering)",
             ours=lab + ["up", "--dir", directory, "--servers", str(SERVERS)],
             # down, and the directory gone: each `lab up` starts from nothing.
             cleanup=["sh", "-c", f'{shlex.join(lab)} down --dir "$0" >/dev/null 2>&1; rm -rf "$0"', directory],
             runs=3, warmup=0, timeout=300, memory=True),
    ]
