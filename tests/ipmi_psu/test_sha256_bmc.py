"""Cipher suite 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128) end to
end: the test BMC (infrapower.lab.rmcp_bmc) is first proven against the
reference client, ipmitool, then fence_ipmi_psu is run against it."""

import shutil
import statistics
import subprocess
import time

import pytest
from ipmi_psu_helpers import LONGEST_PASSWORD, assert_one_error_line, run_on_port

from infrapower.lab import bmc as lab_bmc

needs_ipmitool = pytest.mark.skipif(not shutil.which("ipmitool"), reason="needs ipmitool")


def ipmitool(peer, suite, *command, password_file):
    """ipmitool lanplus with the password read from a file, never argv."""
    started = time.monotonic()
    result = subprocess.run(["ipmitool", "-I", "lanplus", "-C", str(suite), "-H", "127.0.0.1", "-p", str(peer.port),
                             "-U", lab_bmc.ADMIN_USER, "-f", str(password_file), "-N", "1", "-R", "2", *command],
                            capture_output=True, text=True, timeout=30)
    result.seconds = time.monotonic() - started
    return result


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "bmc-password"
    path.write_text(f"{lab_bmc.ADMIN_PASSWORD}\n")
    path.chmod(0o600)
    return path


@needs_ipmitool
@pytest.mark.parametrize("suite", [17, 3])
def test_ipmitool_logs_in_and_switches_the_test_bmc(rmcp_bmc, password_file, suite):
    """The reference client accepts the test BMC: its RAKP, key derivation,
    integrity and encryption are ipmitool's (so also the pack's, whose
    functions the test BMC shares)."""
    status = ipmitool(rmcp_bmc, suite, "chassis", "power", "status", password_file=password_file)
    assert (status.returncode, status.stdout.strip()) == (0, "Chassis Power is on"), status.stderr
    off = ipmitool(rmcp_bmc, suite, "chassis", "power", "off", password_file=password_file)
    assert off.returncode == 0, off.stderr
    assert rmcp_bmc.powered is False
    status = ipmitool(rmcp_bmc, suite, "chassis", "power", "status", password_file=password_file)
    assert status.stdout.strip() == "Chassis Power is off"
    on = ipmitool(rmcp_bmc, suite, "chassis", "power", "on", password_file=password_file)
    assert on.returncode == 0, on.stderr
    assert rmcp_bmc.power_log == ["off", "on"]
    assert rmcp_bmc.logins == 4


@needs_ipmitool
def test_ipmitool_refuses_the_test_bmc_with_a_wrong_password(rmcp_bmc, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it\n")
    result = ipmitool(rmcp_bmc, 17, "chassis", "power", "status", password_file=wrong)
    assert result.returncode != 0
    assert rmcp_bmc.logins == 0


def test_fence_ipmi_psu_status_off_on_reboot_with_cipher_17(rmcp_bmc):
    status = run_on_port(rmcp_bmc.port, "status", cipher=17)
    assert (status.returncode, status.stdout.strip()) == (0, "Status: ON"), status.stderr
    off = run_on_port(rmcp_bmc.port, "off", cipher=17)
    assert (off.returncode, off.stdout.strip()) == (0, "Success: Powered OFF"), off.stderr
    assert rmcp_bmc.powered is False
    status = run_on_port(rmcp_bmc.port, "status", cipher=17)
    assert (status.returncode, status.stdout.strip()) == (2, "Status: OFF")
    on = run_on_port(rmcp_bmc.port, "on", cipher=17)
    assert (on.returncode, on.stdout.strip()) == (0, "Success: Powered ON"), on.stderr
    reboot = run_on_port(rmcp_bmc.port, "reboot", cipher=17)
    assert (reboot.returncode, reboot.stdout.strip()) == (0, "Success: Rebooted"), reboot.stderr
    assert rmcp_bmc.power_log == ["off", "on", "off", "on"]
    assert run_on_port(rmcp_bmc.port, "monitor", cipher=17).returncode == 0


def test_a_slow_chassis_is_polled_until_it_matches(rmcp_bmc):
    rmcp_bmc.power_delay = 0.4
    off = run_on_port(rmcp_bmc.port, "off", cipher=17)
    assert off.returncode == 0, off.stderr
    assert rmcp_bmc.powered is False
    assert off.seconds >= 0.4


def test_unset_cipher_falls_back_to_17_on_a_bmc_without_3():
    from infrapower.lab.rmcp_bmc import RmcpBmc

    with RmcpBmc({lab_bmc.ADMIN_USER: (lab_bmc.ADMIN_PASSWORD, 4)}, suites=(17,)) as peer:
        result = run_on_port(peer.port, "status", verbose=1)
        assert result.returncode == 0, result.stderr
        assert "cipher suite 17" in result.stderr
        refused = run_on_port(peer.port, "status", cipher=3, login_timeout=2)
        assert_one_error_line(refused, "refused the session (cipher suite 3)")


@pytest.mark.parametrize("suite", [1, 2, 3, 17])
def test_every_offered_suite_against_the_test_bmc(rmcp_bmc, suite):
    result = run_on_port(rmcp_bmc.port, "off", cipher=suite)
    assert result.returncode == 0, result.stderr
    assert rmcp_bmc.powered is False


def test_a_20_byte_password_works_and_a_21_byte_one_is_refused_before_any_io(rmcp_bmc):
    ok = run_on_port(rmcp_bmc.port, "status", cipher=17, username="longest", password=LONGEST_PASSWORD)
    assert ok.returncode == 0, ok.stderr
    too_long = LONGEST_PASSWORD + "x"
    for action in ("status", "validate-all"):
        refused = run_on_port(9, action, cipher=17, username="longest", password=too_long)
        line = assert_one_error_line(refused, "21 bytes long", "at most 20 bytes")
        assert too_long not in line
        assert refused.seconds < 1.0
    multibyte = "é" * 11  # 11 characters, 22 bytes
    assert_one_error_line(run_on_port(9, "validate-all", password=multibyte), "22 bytes long")


def test_bmc_key_kg(rmcp_bmc):
    """Two-key login: the BMC key keys the SIK; an all-zero hexadecimal_kg
    means no BMC key (§13.31), as BMCs show an unset Kg."""
    assert run_on_port(rmcp_bmc.port, "status", cipher=17, hexadecimal_kg="00" * 20).returncode == 0
    assert run_on_port(rmcp_bmc.port, "status", cipher=17, hexadecimal_kg="0x0000").returncode == 0
    kg = bytes(range(1, 21))
    rmcp_bmc.kg = kg
    assert run_on_port(rmcp_bmc.port, "status", cipher=17, hexadecimal_kg=kg.hex()).returncode == 0
    wrong = run_on_port(rmcp_bmc.port, "status", cipher=17, hexadecimal_kg="00" * 20)
    assert_one_error_line(wrong, "RAKP 4", "hexadecimal_kg")
    assert "Status" not in wrong.stdout


@needs_ipmitool
def test_timing_against_ipmitool_on_suite_17(rmcp_bmc, password_file, record_property):
    """Measured, not a target: ipmitool -C 17 chassis power status vs the
    agent's whole status run (fencing.py's start-up included)."""
    theirs, ours = [], []
    for _ in range(5):
        theirs.append(ipmitool(rmcp_bmc, 17, "chassis", "power", "status", password_file=password_file).seconds)
        ours.append(run_on_port(rmcp_bmc.port, "status", cipher=17).seconds)
    record_property("ipmitool_C17_status_median_s", statistics.median(theirs))
    record_property("fence_ipmi_psu_C17_status_median_s", statistics.median(ours))
    print(f"suite 17 status: ipmitool {statistics.median(theirs) * 1000:.0f} ms, "
          f"fence_ipmi_psu {statistics.median(ours) * 1000:.0f} ms (medians of 5)")
    assert statistics.median(ours) < 2.0
