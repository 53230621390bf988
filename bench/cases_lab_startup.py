"""The lab itself: `infrapower lab up` to every peer answering, then
`lab down` (issue 2 asks for up to ready in 10 s or less, Pacemaker
excluded).  No peer command: the figure is absolute."""

import sys
import tempfile

from bench import Case


def cases(context=None):
    directory = tempfile.mkdtemp(prefix="bench-lab-")
    cli = [sys.executable, "-m", "infrapower.cli.main"]
    script = f"{' '.join(cli)} lab up --dir {directory} >/dev/null && {' '.join(cli)} lab down --dir {directory} 2>/dev/null && rm -rf {directory}"
    return [Case("lab up + down (whole rack)", ours=["sh", "-c", script], runs=5, warmup=1)]
