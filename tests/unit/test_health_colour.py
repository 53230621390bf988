"""power-health's colours from a chain built from files alone (no lab):
NUT's countdowns to a cut make the node's last healthy feed "about to be
cut", which is red (issue 16); idle countdowns change nothing; a link
not read is never green."""

import pytest

from infrapower.chain import analysis
from infrapower.chain.live import DOWN, OK, UNKNOWN, LinkState, LiveView
from infrapower.health.colour import GREEN, RED, YELLOW, about_to_be_cut, colour, countdown

PSU_FAILED = LinkState(DOWN, "failed", "failed")


@pytest.fixture(scope="module")
def chain():
    """The spec's two UPSes and PDUs from files (tests/chain/test_offline):
    clc's PSU1 on pdu1:outlet1 (UPS1), PSU2 on pdu2:1 (UPS2)."""
    from chain.test_offline import chain_of

    return chain_of()


def _health(chain, variables, states=None):
    view = LiveView(states={link_id: LinkState(OK, "OL") for link_id in chain.links}, variables=variables)
    view.states.update(states or {})
    view.outlet_numbers.update({"pdu1:1": 1, "pdu2:1": 1})
    merged = dict(view.states)
    merged.update(about_to_be_cut(chain, view))
    assessment = analysis.assess_server(chain, "clc", merged)
    unread = [link for feed in assessment.feeds for link in feed.links if merged[link].level == UNKNOWN]
    return colour(assessment, unread)


@pytest.mark.parametrize(
    "variables,states,expected",
    [
        ({}, {}, GREEN),
        # the last healthy feed's UPS counts down: red, while it still runs
        ({"ups2": {"ups.timer.shutdown": "17"}}, {"clc:psu1": PSU_FAILED}, RED),
        ({"ups2": {"ups.timer.reboot": "5"}}, {"clc:psu1": PSU_FAILED}, RED),
        # the PDU serving clc's outlet counts down, as a whole or that outlet
        ({"pdu2": {"ups.timer.shutdown": "30"}}, {"clc:psu1": PSU_FAILED}, RED),
        ({"pdu2": {"outlet.1.timer.shutdown": "9"}}, {"clc:psu1": PSU_FAILED}, RED),
        ({"pdu2": {"outlet.2.timer.shutdown": "9"}}, {"clc:psu1": PSU_FAILED}, YELLOW),  # another outlet
        # another healthy feed left: one failure from losing power
        ({"ups2": {"ups.timer.shutdown": "17"}}, {}, YELLOW),
        # idle countdowns: -1 (NUT), 0 (some drivers), not a number
        ({"ups2": {"ups.timer.shutdown": "-1"}}, {"clc:psu1": PSU_FAILED}, YELLOW),
        ({"ups2": {"ups.timer.shutdown": "0"}}, {"clc:psu1": PSU_FAILED}, YELLOW),
        ({"ups2": {"ups.timer.shutdown": "n/a"}}, {"clc:psu1": PSU_FAILED}, YELLOW),
        ({"ups1": {"ups.timer.shutdown": "-1"}, "ups2": {"ups.timer.reboot": "-1"}}, {}, GREEN),
        # not read: no evidence, never green
        ({}, {"pdu1:1": LinkState(UNKNOWN, "?")}, YELLOW),
    ],
)
def test_about_to_be_cut(chain, variables, states, expected):
    health = _health(chain, variables, states)
    assert health.colour == expected, health.reason
    if expected == RED:
        assert "output off in" in health.reason


def test_a_countdown_on_a_link_already_down_stays_down(chain):
    view = LiveView(states={"ups2": LinkState(DOWN, "OFF", "off")}, variables={"ups2": {"ups.timer.shutdown": "5"}})
    assert about_to_be_cut(chain, view) == {}


@pytest.mark.parametrize(
    "variables,seconds",
    [({}, None), ({"ups.timer.shutdown": "-1"}, None), ({"ups.timer.shutdown": "12"}, 12.0),
     ({"ups.timer.shutdown": "12", "ups.timer.reboot": "4"}, 4.0)],
)
def test_countdown(variables, seconds):
    assert countdown(variables, ("ups.timer.shutdown", "ups.timer.reboot")) == seconds
