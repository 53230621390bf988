"""fence_nut's round trips to upsd per action (issue 18): counted by the
client, shown in `-v` as "upsd requests: N", asserted against the lab's
upsd 2.8.0.  Several requests sent at once and answered in turn (the login,
the states of every plug of a poll) are one round trip.  upsd's cache is
still never trusted: after a command, states are read with GET VAR (LIST
VAR's copy serves only the read before any command)."""

import re

from nut_helpers import fencer, run_agent


def requests(run):
    """(total, [request lines sent]) of a `-v` run."""
    totals = re.findall(r"upsd requests: (\d+)", run.err)
    assert len(totals) == 1, run
    return int(totals[0]), re.findall(r"upsd <- (.*)", run.err)


def test_status_login_and_one_list(nutlab):
    run = run_agent(fencer(nutlab, plug="pdu2:3", action="status", verbose=1))
    assert run.rc == 0 and "Status: ON" in run.out, run
    total, sent = requests(run)
    # USERNAME + PASSWORD in one round trip, LIST VAR: no GET VAR (was 4).
    assert total == 2, sent
    assert [line.split()[0] for line in sent] == ["USERNAME", "PASSWORD", "LIST"], sent


def test_status_of_two_plugs_is_not_one_request_per_plug(nutlab):
    run = run_agent(fencer(nutlab, plug="tpdu:1,tpdu:2", action="status", verbose=1))
    assert run.rc == 0, run
    assert requests(run)[0] == 2


def test_status_without_a_user_is_one_list(nutlab):
    options = fencer(nutlab, plug="pdu2:3", action="status", verbose=1)
    del options["username"], options["password"]
    run = run_agent(options)
    assert run.rc == 0, run
    assert requests(run)[0] == 1


def test_off_on_of_two_plugs_reads_both_in_one_round_trip_per_poll(nutlab):
    for action in ("off", "on"):
        run = run_agent(fencer(nutlab, plug="tpdu:1,tpdu:2", action=action, verbose=1))
        assert run.rc == 0 and f"Success: Powered {action.upper()}" in run.out, run
        total, sent = requests(run)
        reads_1 = [line for line in sent if line == "GET VAR tpdu outlet.1.status"]
        reads_2 = [line for line in sent if line == "GET VAR tpdu outlet.2.status"]
        assert reads_1 and len(reads_1) == len(reads_2), sent
        # Every line is its own round trip but PASSWORD (sent with
        # USERNAME) and outlet 2's GET (sent with outlet 1's).
        assert total == len(sent) - 1 - len(reads_2), sent
        # The command of each plug was tracked, and nothing was read twice
        # before it: one LIST VAR, one LIST CMD.
        assert sum(line.startswith("LIST VAR") for line in sent) == 1
        assert sum(line.startswith("LIST CMD") for line in sent) == 1
        assert sum(line.startswith("INSTCMD") for line in sent) == 2


def test_reboot_states_after_the_command_come_from_get_var(nutlab):
    run = run_agent(fencer(nutlab, plug="tpdu:3", action="reboot", verbose=1))
    assert run.rc == 0 and "Success: Rebooted" in run.out, run
    total, sent = requests(run)
    first_command = next(i for i, line in enumerate(sent) if line.startswith("INSTCMD"))
    assert any(line == "GET VAR tpdu outlet.3.status" for line in sent[first_command:]), sent
    assert not any(line.startswith("LIST VAR") for line in sent[first_command:]), sent
    assert total == len(sent) - 1  # PASSWORD rode with USERNAME


def test_count_shown_for_a_failed_action_too(nutlab):
    run = run_agent(fencer(nutlab, plug="nosuchdevice:1", action="status", verbose=1))
    assert run.rc == 1 and "Traceback" not in run.err, run
    assert re.search(r"upsd requests: \d+", run.err), run
