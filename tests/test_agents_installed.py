"""What every agent of the pack owes Pacemaker and the admin, checked on
the installed copy in /usr/sbin: listed by pcs, described, its metadata
valid and equal to the golden file, its man page installed, and it runs
under pacemaker-fenced's bare environment."""

import subprocess
from pathlib import Path

import pytest

import agentcheck

REPO = Path(__file__).resolve().parents[1]
AGENTS = sorted(path.stem for path in REPO.glob("agents/fence_*/fence_*.py"))
SBIN = Path("/usr/sbin")


def run(*argv, env=None):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture(params=AGENTS)
def agent(request):
    path = SBIN / request.param
    if not path.exists():
        pytest.fail(f"{path} is not installed: run `make install`")
    return request.param


def test_metadata_is_valid_and_matches_the_golden_file(agent):
    xml = agentcheck.metadata_xml(str(SBIN / agent))
    agentcheck.validate_rng(xml)
    agentcheck.check_golden_metadata(str(SBIN / agent), str(REPO / "metadata" / f"{agent}.xml"))


def test_metadata_runs_in_pacemaker_fenceds_bare_environment(agent):
    result = run(str(SBIN / agent), "-o", "metadata", env={})
    assert result.returncode == 0, result.stderr
    assert f'name="{agent}"' in result.stdout


def test_pcs_lists_and_describes_it_and_stonith_admin_reads_its_metadata(agent):
    assert agent in run("pcs", "stonith", "list").stdout
    described = run("pcs", "stonith", "describe", agent)
    assert described.returncode == 0 and "plug" in described.stdout or "ip" in described.stdout
    metadata = run("stonith_admin", "--metadata", "--agent", agent)
    assert metadata.returncode == 0 and f'name="{agent}"' in metadata.stdout


def test_man_page_is_installed_renders_and_is_current(agent, tmp_path):
    found = run("man", "-w", agent)
    assert found.returncode == 0, f"man {agent}: {found.stderr}"
    built = tmp_path / f"{agent}.8"
    agentcheck.build_manpage(str(REPO / "metadata" / f"{agent}.xml"), str(built))
    assert built.read_text() == (REPO / "man" / f"{agent}.8").read_text(), "man page is stale: run `make metadata`"


def test_no_traceback_for_a_nonsense_option(agent):
    result = run(str(SBIN / agent), "--no-such-option")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_the_agent_runs_on_debians_python_from_the_debian_package(agent):
    """The agents come from the Debian package (dpkg knows the file) and
    run on /usr/bin/python3 with Debian's libraries, not on the lab's
    environment (snmpsim, pysmi and pytest are test-only)."""
    path = SBIN / agent
    assert path.read_text().splitlines()[0].split()[0] == "#!/usr/bin/python3"
    owner = run("dpkg-query", "-S", str(path))
    assert owner.returncode == 0 and owner.stdout.startswith("fence-agents-infrapower:"), owner.stdout + owner.stderr


def test_the_snmp_path_imports_no_snmp_library_nor_lab_or_test_package():
    """The agents speak SNMP with infrapower.snmp.ber: pysnmp and pyasn1
    (~35 ms of CPU per run) and the lab's snmpsim/pysmi stay unloaded."""
    probe = ("import sys, infrapower.snmp.session as s, infrapower.snmp.pdu, infrapower.snmp.usm; s.Session; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'pysnmp', 'pyasn1', 'pysmi', 'snmpsim', 'pytest'}))")
    result = run("/usr/bin/python3", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
