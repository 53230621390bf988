"""The lab's wait_until: infrapower.fence.poll adapted to peers starting
up (an absolute deadline, exceptions remembered until time runs out)."""

import time

import pytest

from infrapower.lab.core import LabError, PeerGone, wait_until


def test_returns_the_first_truthy_value_after_failed_checks():
    answers = iter([ConnectionRefusedError("not yet"), None, 0, "ready"])

    def check():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(check, time.monotonic() + 5, "peer") == "ready"


def test_times_out_with_the_last_error():
    def check():
        raise ConnectionRefusedError("port closed")

    started = time.monotonic()
    with pytest.raises(LabError, match=r"^snmpsim not ready in time: port closed$"):
        wait_until(check, started + 0.2, "snmpsim")
    assert 0.2 <= time.monotonic() - started < 2


def test_times_out_without_an_error_when_checks_only_said_no():
    with pytest.raises(LabError, match=r"^upsd not ready in time$"):
        wait_until(lambda: False, time.monotonic() + 0.1, "upsd")


def test_a_past_deadline_still_checks_once():
    assert wait_until(lambda: 7, time.monotonic() - 1, "peer") == 7


def test_a_peer_gone_is_not_waited_on():
    def check():
        raise PeerGone("snmpsim for pdu1 died")

    started = time.monotonic()
    with pytest.raises(PeerGone):
        wait_until(check, started + 10, "pdu1")
    assert time.monotonic() - started < 1
