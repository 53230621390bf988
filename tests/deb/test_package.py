"""The Debian package (#17): built with dpkg-buildpackage from a clean copy
of the tree, lintian-clean, and its whole life (install of the previous
build, upgrade, remove, purge) leaves no file behind.

The life runs in a private mount namespace over overlays (lifecycle.py):
the machine's installed package, which the other tests use, is never
touched.  Both builds are real dpkg-buildpackage runs; the previous one
differs by its version and by one extra module, which the upgrade must
take away.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIFECYCLE = Path(__file__).with_name("lifecycle.py")
CLEAN_ENV = dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin", DEBIAN_FRONTEND="noninteractive")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("dpkg-buildpackage") or not shutil.which("unshare"),
                       reason="needs root, dpkg-dev and unshare (make install)"),
]


def make_deb(tree, out):
    run = subprocess.run(["make", "-s", "-C", str(tree), "deb", f"DEBDIR={out}"], capture_output=True, text=True,
                         timeout=600, env=CLEAN_ENV, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    (deb,) = out.glob("*.deb")
    (changes,) = out.glob("*.changes")
    return deb, changes


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    top = tmp_path_factory.mktemp("deb")
    new = make_deb(REPO, top / "new")
    # The previous build: the same tree at a lower version, with one module
    # this version no longer has.
    files = subprocess.run(["make", "-s", "-C", str(REPO), "tree-files"], capture_output=True, check=True).stdout
    source = top / "previous-src"
    source.mkdir()
    subprocess.run(f"tar --null -T - -cf - | tar -C {source} -xf -", shell=True, input=files, cwd=REPO, check=True)
    changelog = source / "debian" / "changelog"
    changelog.write_text(re.sub(r"\(([^)]+)\)", r"(\1~previous)", changelog.read_text(), count=1))
    (source / "infrapower" / "_previous_build.py").write_text('"""A module only the previous build shipped."""\n')
    previous = make_deb(source, top / "previous")
    return {"new": new, "previous": previous, "top": top}


def test_lintian_finds_no_error_and_no_warning(builds):
    deb, changes = builds["new"]
    run = subprocess.run(["lintian", "--fail-on", "error,warning", "--no-tag-display-limit", str(changes)],
                         capture_output=True, text=True, timeout=600, env=CLEAN_ENV)
    tags = [line for line in run.stdout.splitlines() if re.match(r"[EW]: ", line)]
    assert run.returncode == 0 and not tags, run.stdout + run.stderr


def test_contents_are_where_debian_puts_them(builds):
    deb, _ = builds["new"]
    contents = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    paths = {line.split(None, 5)[5].split(" -> ")[0].removeprefix(".") for line in contents.splitlines()}
    agents = sorted(p.stem for p in REPO.glob("agents/fence_*/fence_*.py"))
    expected = {"/usr/bin/infrapower", "/lib/nut/ipmi-psu", "/usr/share/man/man1/infrapower.1.gz",
                "/usr/lib/python3/dist-packages/infrapower/snmp/ber.py",
                "/usr/lib/python3/dist-packages/PyNUT/__init__.py"}
    expected |= {f"/usr/sbin/{agent}" for agent in agents} | {f"/usr/share/man/man8/{agent}.8.gz" for agent in agents}
    expected |= {f"/usr/share/fence-agents-infrapower/tables/{p.parent.name}/{p.name}"
                 for p in REPO.glob("agents/fence_snmp_pdu/tables/nut-*/*.json")}
    expected |= {f"/usr/lib/ocf/resource.d/infrapower/{p.name}" for p in REPO.glob("ocf/*")}
    expected |= {f"/lib/systemd/system/{p.name}" for p in REPO.glob("systemd/*.service")}
    assert expected <= paths, sorted(expected - paths)
    # Nothing of the tests or the lab's environment.
    assert not [p for p in paths if re.search(r"/(tests|snmpsim|pysmi|pytest|zeroconf)(/|$)", p)]
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True).stdout
    for package in ("fence-agents", "python3-pyghmi", "python3-cryptography"):
        assert re.search(rf"(^|, ){package}(,|$| )", fields.strip()), fields
    # SNMP messages are infrapower.snmp.ber's: pysnmp (and pysmi with it) is no dependency.
    assert "pysnmp" not in fields, fields


def test_install_upgrade_remove_purge_leave_no_file_behind(builds):
    (previous, _), (new, _) = builds["previous"], builds["new"]
    work = builds["top"] / "namespace"
    work.mkdir()
    run = subprocess.run(["unshare", "--mount", "--propagation", "private", "/usr/bin/python3", str(LIFECYCLE),
                          str(work), str(previous), str(new)], capture_output=True, text=True, timeout=900,
                         env=CLEAN_ENV, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["previous"]["version"].endswith("~previous")
    assert report["previous"]["missing"] == []
    assert report["previous"]["has_previous_only"] and report["previous"]["agent_runs"]
    assert not report["upgraded"]["version"].endswith("~previous")
    assert report["upgraded"]["missing"] == []
    assert report["upgraded"]["previous_only_left"] == []  # the upgrade took the old module and its .pyc away
    assert report["upgraded"]["compiled"] and report["upgraded"]["agent_runs"]
    assert report["removed"]["left"] == []
    assert not report["purged"]["still_known"]
    assert report["purged"]["listed_left"] == []
    assert report["purged"]["written_left"] == []
