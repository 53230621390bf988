"""fence_ipmi_psu and its RMCP+ session against a BMC (or a path) that lies:
tampered RAKP 2/4 codes, wrong digests, tampered or stripped integrity
codes, a downgraded Open Session answer, replayed answers.  Zero false
successes, zero tracebacks, every run bounded."""

import pytest
from ipmi_psu_helpers import assert_one_error_line, run_on_port

from infrapower.ipmi.chassis import chassis_power, open_session
from infrapower.fence import FenceError
from infrapower.ipmi.rmcp import ReplayWindow
from infrapower.ipmi.session import NETFN_APP, IpmiSettings
from infrapower.lab import bmc as lab_bmc

BOUND_SECONDS = 3.0  # login_timeout 1 s + the agent's start-up, on a busy machine


def refused(peer, fault, suite, *fragments, action="status"):
    peer.faults = {fault}
    result = run_on_port(peer.port, action, cipher=suite, login_timeout=1, shell_timeout=1)
    line = assert_one_error_line(result, *fragments)
    assert "Status:" not in result.stdout and "Success" not in result.stdout
    assert result.seconds < BOUND_SECONDS, f"{fault}: {result.seconds:.2f} s"
    assert peer.power_log == []
    return line


@pytest.mark.parametrize("suite", [3, 17])
@pytest.mark.parametrize("action", ["status", "off"])
@pytest.mark.parametrize("fault, fragment", [("rakp2_code", "RAKP 2 key check failed"),
                                             ("rakp4_code", "session key check failed (RAKP 4)")])
def test_tampered_rakp2_or_rakp4_is_refused(rmcp_bmc, suite, action, fault, fragment):
    refused(rmcp_bmc, fault, suite, fragment, action=action)


def test_rakp2_with_a_sha1_code_in_a_sha256_suite_is_refused(rmcp_bmc):
    refused(rmcp_bmc, "rakp2_sha1", 17, "RAKP 2 key check failed")


def test_a_downgraded_open_session_answer_is_refused(rmcp_bmc):
    refused(rmcp_bmc, "downgrade", 17, "other algorithms than proposed")


@pytest.mark.parametrize("suite", [2, 3, 17])
@pytest.mark.parametrize("fault", ["integrity_code", "unsigned"])
def test_session_answers_failing_integrity_are_dropped(rmcp_bmc, suite, fault):
    """The BMC executes what it is sent, but its answers do not verify:
    the agent must not act on them (it never got past the privilege
    level it asked for) and says why it gave up."""
    refused(rmcp_bmc, fault, suite, "did not answer", "failing the integrity or format checks", action="off")


def test_k1_k2_from_digest_long_constants_are_what_broke_suite_17(rmcp_bmc):
    """A peer deriving K1/K2 the way the pack did before the fix (what a
    real BMC saw of the pack): it drops every packet the session signs, so
    the login ends in silence right after RAKP 4.  For SHA-1 both ways
    agree."""
    refused(rmcp_bmc, "digest_constants", 17, "did not answer Set Session Privilege Level",
            "after a complete RAKP login", "another cipher suite than 17")
    assert run_on_port(rmcp_bmc.port, "status", cipher=3).returncode == 0


def test_integrity_tampering_mid_session_never_yields_a_state(rmcp_bmc):
    with open_session(IpmiSettings("127.0.0.1", rmcp_bmc.port, lab_bmc.ADMIN_USER, lab_bmc.ADMIN_PASSWORD, cipher_suite=17,
                      command_timeout=0.6)) as session:
        assert chassis_power(session) == "on"
        rmcp_bmc.powered = False
        for fault in ("integrity_code", "unsigned"):
            rmcp_bmc.faults = {fault}
            with pytest.raises(FenceError, match="failing the integrity"):
                chassis_power(session)
        rmcp_bmc.faults = set()
        assert chassis_power(session) == "off"


@pytest.mark.parametrize("suite", [3, 17])
def test_replayed_answers_are_dropped_even_after_rq_seq_wraps(rmcp_bmc, suite):
    """rq_seq has 6 bits: 64 commands later an old answer carries the same
    rq_seq as a new request.  The test BMC replays, before each answer,
    the first answer it ever sent for that (netfn, command, rq_seq)."""
    with open_session(IpmiSettings("127.0.0.1", rmcp_bmc.port, lab_bmc.ADMIN_USER, lab_bmc.ADMIN_PASSWORD, cipher_suite=suite,
                      command_timeout=1)) as session:
        assert chassis_power(session) == "on"  # recorded: "on"
        rmcp_bmc.powered = False
        rmcp_bmc.faults = {"replay", "duplicate"}
        for _ in range(200):  # over three wraps of rq_seq
            session.command(NETFN_APP, 0x01)  # Get Device ID
            assert chassis_power(session) == "off"


def test_a_replayed_on_never_completes_a_reboot_of_a_node_that_stays_off(rmcp_bmc):
    """reboot: off is verified, on is ignored by the chassis, and the path
    replays the session's first "on" answer once rq_seq has wrapped: the
    agent must report failure, not "Rebooted"."""
    rmcp_bmc.faults = {"replay", "ignore_on"}
    result = run_on_port(rmcp_bmc.port, "reboot", cipher=17, power_timeout=5)
    assert_one_error_line(result, "did not come back on")
    assert "Success" not in result.stdout
    assert rmcp_bmc.powered is False
    # The replay did happen: the agent polled past rq_seq's wrap.
    assert sum(1 for command in rmcp_bmc.commands if command == (0x00, 0x01)) > 64
    assert result.seconds < 8


def test_duplicated_answers_are_harmless(rmcp_bmc):
    rmcp_bmc.faults = {"duplicate"}
    result = run_on_port(rmcp_bmc.port, "reboot", cipher=17)
    assert (result.returncode, result.stdout.strip()) == (0, "Success: Rebooted"), result.stderr
    assert rmcp_bmc.power_log == ["off", "on"]


def test_a_silent_bmc_fails_within_the_login_timeout(rmcp_bmc):
    refused(rmcp_bmc, "silent", 17, "did not answer Open Session")


def test_replay_window():
    """§6.12.13: each sequence number once; up to 16 older than the newest
    accepted once (reordering); older ones, duplicates and 0 refused;
    32-bit wrap."""
    window = ReplayWindow()
    accepted = [window.accept(number) for number in (5, 5, 6, 4, 4, 3, 100, 85, 84, 100, 101, 99, 99, 0)]
    assert accepted == [True, False, True, True, False, True, True, True, False, False, True, True, False, False]
    wrapping = ReplayWindow()
    assert [wrapping.accept(number) for number in (0xFFFFFFFE, 0xFFFFFFFF, 1, 0xFFFFFFFF, 0xFFFFFFFD, 2)] == [
        True, True, True, False, True, True]
    far = ReplayWindow()
    assert far.accept(1000) and not far.accept(1000 + 0x90000000 & 0xFFFFFFFF) and far.accept(1001)
