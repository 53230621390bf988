"""The rack's physics, without any simulator: who is powered, and the
power log's order and timestamps."""

import time

import pytest

from infrapower.lab.rack import Rack, default_topology, powered_servers, psu_health


@pytest.fixture
def rack(tmp_path):
    rack = Rack(tmp_path)
    rack.create(default_topology())
    return rack


def server_states(rack):
    state = rack.read()
    return powered_servers(rack.topology(), state)


def test_a_server_runs_while_any_feed_is_live(rack):
    rack.switch_outlet("pdu1:1", False)
    assert server_states(rack)["clc"] is True
    rack.switch_outlet("pdu2:1", False)
    assert server_states(rack)["clc"] is False
    rack.switch_outlet("pdu2:1", True)
    assert server_states(rack)["clc"] is True


def test_a_ups_off_cuts_every_feed_of_its_pdu(rack):
    rack.set_ups("ups2", False)
    state = rack.read()
    health = psu_health(rack.topology(), state)
    assert {psu: h for psu, h in health.items() if psu.endswith("psu2")} == {
        "clc:psu2": "input_lost",
        "nc1:psu2": "input_lost",
        "nc2:psu2": "input_lost",
    }
    assert all(server_states(rack).values())
    rack.set_ups("ups1", False)
    assert not any(server_states(rack).values())


def test_a_failed_psu_does_not_feed_its_server(rack):
    rack.set_fault("clc:psu1", "failed")
    rack.switch_outlet("pdu2:1", False)
    assert server_states(rack)["clc"] is False


def test_a_switching_delay_is_stamped_with_the_time_it_happened(rack):
    started = time.time()
    rack.switch_outlet("pdu1:4", False, delay=0.2)
    assert rack.read()["outlets"]["pdu1:4"]["on"] is True
    time.sleep(0.3)
    assert rack.read()["outlets"]["pdu1:4"]["on"] is False
    event = [e for e in rack.power_log() if e["name"] == "pdu1:4"][-1]
    assert event["state"] == "off"
    assert 0.15 <= event["t"] - started <= 0.28


def test_stuck_outlets_ignore_commands(rack):
    rack.set_fault("pdu1:2", "stuck_on")
    assert rack.switch_outlet("pdu1:2", False) is False
    assert rack.read()["outlets"]["pdu1:2"]["on"] is True
    rack.set_fault("pdu1:2", None)
    assert rack.switch_outlet("pdu1:2", False) is True


def test_the_log_shows_both_feeds_off_before_either_came_back(rack):
    started = time.time()
    rack.switch_outlet("pdu1:3", False)
    rack.switch_outlet("pdu2:3", False)
    rack.switch_outlet("pdu1:3", True)
    rack.switch_outlet("pdu2:3", True)
    events = [
        (e["kind"], e["name"], e["state"])
        for e in rack.power_log()
        if e["t"] >= started and (e["kind"] == "server" or e["name"] in ("pdu1:3", "pdu2:3"))
    ]
    assert events == [
        ("outlet", "pdu1:3", "off"),
        ("outlet", "pdu2:3", "off"),
        ("server", "nc2", "off"),
        ("outlet", "pdu1:3", "on"),
        ("server", "nc2", "on"),
        ("outlet", "pdu2:3", "on"),
    ]


def test_cycle_turns_the_outlet_back_on(rack):
    rack.cycle_outlet("pdu1:5", off_seconds=0.1)
    assert rack.read()["outlets"]["pdu1:5"]["on"] is False
    time.sleep(0.15)
    assert rack.read()["outlets"]["pdu1:5"]["on"] is True
