"""The shared agent checks, proved on an agent that is known to be right:
fence-agents' own fence_apc_snmp (SNMP over UDP through net-snmp's tools)."""

import shutil
from pathlib import Path

import pytest

import agentcheck

APC_SNMP = Path("/usr/sbin/fence_apc_snmp")

pytestmark = pytest.mark.skipif(not APC_SNMP.exists(), reason="fence-agents' fence_apc_snmp is not installed")


def apc_options(host, port):
    # Options as Pacemaker hands them over: on stdin, never in argv.
    return {"ip": host, "ipport": port, "plug": "1", "community": "private"}


def test_metadata_validates_against_the_schema():
    xml = agentcheck.metadata_xml(APC_SNMP)
    assert '<resource-agent name="fence_apc_snmp"' in xml
    agentcheck.validate_rng(xml)


def test_schema_check_rejects_broken_metadata():
    xml = agentcheck.metadata_xml(APC_SNMP).replace("<shortdesc", "<shortdescription", 1)
    xml = xml.replace("</shortdesc>", "</shortdescription>", 1)
    with pytest.raises(AssertionError, match="does not validate"):
        agentcheck.validate_rng(xml)


def test_golden_round_trip_and_a_helpful_diff(tmp_path):
    golden = tmp_path / "metadata" / "fence_apc_snmp.xml"
    with pytest.raises(AssertionError, match="make metadata"):
        agentcheck.check_golden_metadata(APC_SNMP, golden)
    agentcheck.write_golden(APC_SNMP, golden)
    agentcheck.check_golden_metadata(APC_SNMP, golden)

    golden.write_text(golden.read_text().replace('default="private"', 'default="public"'))
    with pytest.raises(AssertionError) as failure:
        agentcheck.check_golden_metadata(APC_SNMP, golden)
    diff_lines = str(failure.value).splitlines()
    # The diff reads golden -> actual: the stale value removed, the real one added.
    assert any(line.startswith("-") and 'default="public"' in line for line in diff_lines)
    assert any(line.startswith("+") and 'default="private"' in line for line in diff_lines)
    assert "make metadata" in diff_lines[0]


def test_manpage_builds_and_renders_without_warnings(tmp_path):
    golden = agentcheck.write_golden(APC_SNMP, tmp_path / "fence_apc_snmp.xml")
    page = agentcheck.build_manpage(golden, tmp_path / "man" / "fence_apc_snmp.8")
    text = agentcheck.render_manpage(page)
    assert "fence_apc_snmp" in text and "--ip=[ip]" in text


def test_render_reports_groff_warnings(tmp_path):
    page = tmp_path / "bad.8"
    # An undefined macro, and a backslash-n read as a number register (what an
    # unescaped `\\n` in metadata text turns into).
    page.write_text('.TH BAD 8\n.SH NAME\nbad \\- bad\n.nosuchmacro\nC:\\new\n')
    with pytest.raises(AssertionError, match="warning"):
        agentcheck.render_manpage(page)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("snmpget") is None, reason="fence_apc_snmp needs net-snmp's snmpget")
@pytest.mark.parametrize("action", ["off", "reboot"])
def test_delay_holds_back_the_first_packet(action):
    undelayed, delayed = agentcheck.check_delay(APC_SNMP, apc_options, protocol="udp", delay=2, action=action)
    print(f"fence_apc_snmp action={action}: first UDP packet {undelayed:.2f} s without delay, {delayed:.2f} s with delay=2")
    assert delayed >= 2


def test_delay_check_fails_an_agent_that_ignores_delay(tmp_path):
    """A stand-in agent that connects at once whatever delay says."""
    impatient = tmp_path / "fence_impatient"
    impatient.write_text(
        "#!/usr/bin/env python3\n"
        "import socket, sys\n"
        "opts = dict(l.strip().split('=', 1) for l in sys.stdin if '=' in l)\n"
        "socket.create_connection((opts['ip'], int(opts['ipport']))).close()\n"
    )
    impatient.chmod(0o755)
    with pytest.raises(AssertionError, match="before any network I/O"):
        agentcheck.check_delay(impatient, apc_options, protocol="tcp", delay=1)


def test_delay_check_says_when_the_agent_never_gets_there(tmp_path):
    broken = tmp_path / "fence_broken"
    broken.write_text("#!/bin/sh\necho 'Failed: no such option' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(AssertionError, match="exited 1 before any udp I/O.*no such option"):
        agentcheck.check_delay(broken, apc_options, protocol="udp", delay=1)
