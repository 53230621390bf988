"""The Debian package (#17): how long `make deb` takes, and what it
installs.

Build: `make deb` (a clean copy of the tree, then dpkg-buildpackage -us
-uc -b: pybuild's wheel, dh_python3, man pages, md5sums, the .deb) against
building the same Python wheel alone from the same copy (`python3 -m build
--wheel`, what pybuild runs inside): the ratio is the Debian packaging's
own cost.  The build's stamp is removed before each run so every run
builds.

Installed size: the package's Installed-Size beside fence-agents' (the
package every node already has), in the case's name (bench.py times; it
does not weigh).
"""

import contextlib
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import Case

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "fence-agents-infrapower"
CLEAN_PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"


def installed_kib(package):
    query = subprocess.run(["dpkg-query", "-W", "-f=${Installed-Size}", package], capture_output=True, text=True)
    return int(query.stdout) if query.returncode == 0 and query.stdout.strip().isdigit() else None


def _mib(kib):
    return "?" if kib is None else f"{kib / 1024:.1f} MiB"


@contextlib.contextmanager
def session():
    work = Path(tempfile.mkdtemp(prefix="bench-deb-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cases(context=None):
    work = context or Path(tempfile.mkdtemp(prefix="bench-deb-"))
    repo, debdir, wheel_src = shlex.quote(str(REPO)), shlex.quote(str(work / "deb")), shlex.quote(str(work / "wheel-src"))
    build_deb = f"rm -f {debdir}/stamp && env {CLEAN_PATH} make -s -C {repo} deb DEBDIR={debdir} >/dev/null"
    build_wheel = (f"rm -rf {wheel_src} && mkdir -p {wheel_src} && make -s -C {repo} tree-files | tar --null -T - -cf - "
                   f"| tar -C {wheel_src} -xf - && cd {wheel_src} && env {CLEAN_PATH} python3 -m build --wheel "
                   f"--no-isolation --outdir {shlex.quote(str(work / 'wheel'))} >/dev/null 2>&1")
    ours, peer = installed_kib(PACKAGE), installed_kib("fence-agents")
    size = f"installed {_mib(ours)} vs fence-agents {_mib(peer)}"
    if ours and peer:
        size += f" ({ours / peer:.2f}×)"
    return [
        Case(f"Debian package build (make deb) vs the wheel alone; {size}", ours=["sh", "-c", build_deb],
             peer=["sh", "-c", build_wheel], runs=3, warmup=1, timeout=600),
    ]
