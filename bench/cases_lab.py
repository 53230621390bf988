"""Self-check of the harness, not a benchmark of anything we ship: a
process that does nothing against an interpreter that does nothing, and
options on stdin reaching the command.  Run it by name:

    python3 bench/bench.py bench/cases_lab.py
"""

import sys
from pathlib import Path

from bench import Case

# Proves nothing about the agents, so `make bench` leaves it out.
IN_DEFAULT_SET = False

# Exits 0 only if the secret arrived on stdin (and so never sat in argv).
_READS_SECRET = "import sys; sys.exit(0 if 'passwd=s3cret' in sys.stdin.read().split() else 3)"


def cases(context=None):
    return [
        # exec of a tiny C binary beats starting Python by far: ≤ 0.6× holds
        # on any machine, so a harness that timed the wrong thing would show.
        Case("true vs python3 -c pass", ours=["/bin/true"], peer=[sys.executable, "-c", "pass"], target=0.6),
        # A burst of 8 copies, alternating with the peer, each run followed
        # by a cleanup, with a peak-memory column: burst.py and the Case
        # options the scale cases use.
        Case(
            "burst of 8, interleaved, cleanup, memory",
            ours=[sys.executable, str(Path(__file__).with_name("burst.py")), "--plugs", "1-8", "--",
                  sys.executable, "-c", "import sys; sys.exit(0 if sys.stdin.read() == 'plug=' + sys.argv[1] else 3)",
                  "{plug}"],
            peer=["/bin/true"],
            stdin="plug={plug}",
            cleanup=["/bin/true"],
            interleave=True,
            memory=True,
            runs=3,
            warmup=1,
        ),
        Case(
            "options on stdin",
            ours=[sys.executable, "-c", _READS_SECRET],
            peer=[sys.executable, "-S", "-c", _READS_SECRET],
            stdin="action=status\npasswd=s3cret\n",
            runs=5,
            warmup=1,
        ),
    ]
