"""fence_ipmi_psu against the lab's BMCs (ipmi_sim): helpers that run the
installed agent and fence_ipmilan the way Pacemaker does, options on stdin."""

import shutil
import subprocess
import time

import pytest

from infrapower.lab import bmc

AGENT = "/usr/sbin/fence_ipmi_psu"
FENCE_IPMILAN = "/usr/sbin/fence_ipmilan"

needs_bmcs = pytest.mark.skipif(not shutil.which("ipmi_sim"), reason="needs openipmi (ipmi_sim)")
needs_ipmilan = pytest.mark.skipif(not shutil.which(FENCE_IPMILAN), reason="needs fence-agents' fence_ipmilan")


@pytest.fixture
def bmcs(rack):
    """The session lab, reset, with every BMC up and its sensors showing
    the reset rack before the test starts."""
    for server in rack.rack.topology()["servers"]:
        bmc.set_bmc_down(rack, server, False)
    bmc.sync_sensors(rack)
    yield rack
    for server in rack.rack.topology()["servers"]:
        bmc.set_bmc_down(rack, server, False)


def options_text(port, action, **extra):
    """Pacemaker-style stdin for the BMC on 127.0.0.1:`port` as administrator."""
    options = {
        "action": action,
        "ip": "127.0.0.1",
        "ipport": port,
        "username": bmc.ADMIN_USER,
        "password": bmc.ADMIN_PASSWORD,
        "power_timeout": 10,
    }
    options.update(extra)
    return "".join(f"{key}={value}\n" for key, value in options.items() if value is not None)


def run_agent(lab, server, action, agent=AGENT, **extra):
    """An agent on `server`'s lab BMC."""
    return run_on_port(lab.port(f"bmc:{server}"), action, agent=agent, **extra)


def run_on_port(port, action, agent=AGENT, env=None, timeout=60, **extra):
    started = time.monotonic()
    result = subprocess.run([agent], input=options_text(port, action, **extra), capture_output=True,
                            text=True, timeout=timeout, env=env)
    result.seconds = time.monotonic() - started
    return result


@pytest.fixture
def rmcp_bmc():
    """A fresh RMCP+ test BMC (infrapower.lab.rmcp_bmc: suites 1, 2, 3 and
    17) with the lab's users, powered on, no fault."""
    from infrapower.lab.rmcp_bmc import OPERATOR, RmcpBmc

    with RmcpBmc(RMCP_BMC_USERS | {bmc.OPERATOR_USER: (bmc.OPERATOR_PASSWORD, OPERATOR)}) as peer:
        yield peer


# The longest password IPMI 2.0 allows: 20 bytes.
LONGEST_PASSWORD = "twenty-byte-password"
RMCP_BMC_USERS = {bmc.ADMIN_USER: (bmc.ADMIN_PASSWORD, 4), "longest": (LONGEST_PASSWORD, 4)}


def run_ipmilan(lab, server, action, **extra):
    """fence_ipmilan on the same BMC: lanplus and cipher suite 3 (ipmi_sim
    offers 1-3 only; without -C ipmitool probes for 10-20 s)."""
    return run_agent(lab, server, action, agent=FENCE_IPMILAN, lanplus=1, cipher=bmc.CIPHER_SUITE, **extra)


def error_lines(result):
    """stderr lines that are not debug output."""
    return [line for line in result.stderr.splitlines() if line.strip() and "DEBUG" not in line]


def assert_one_error_line(result, *fragments):
    assert result.returncode == 1, result.stdout + result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def server_events(lab, server):
    return [e["state"] for e in lab.rack.power_log() if e["kind"] == "server" and e["name"] == server]


def list_status(lab, server, **extra):
    """{name: (fields..., state)} from list-status."""
    result = run_agent(lab, server, "list-status", **extra)
    assert result.returncode == 0, result.stderr
    rows = [line.split(",") for line in result.stdout.splitlines()]
    return {row[1]: row for row in rows}
