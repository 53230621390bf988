"""The safety core (infrapower.fence) against a fake device that covers
every outcome a real one can give: no lab, no root, no network."""

import pytest

from infrapower.errors import FenceError
from infrapower.fence import EXIT_OFF, EXIT_OK, Outlets, cycle_verified, run_action, switch_verified


class FakeOutlets(Outlets):
    """Plugs whose states follow a script.  `after_switch[plug]` is the
    sequence of states read after a command (the last one repeats);
    `refuse` names plugs whose check() refuses; every call is logged."""

    def __init__(self, states, after_switch=None, refuse=(), live=True, cycle=False):
        self.states = dict(states)
        self.after_switch = {plug: list(seq) for plug, seq in (after_switch or {}).items()}
        self.refuse = set(refuse)
        self.reads_are_live = live
        self.calls = []
        self._cycle = cycle
        self._pending = {}

    def status(self, plugs):
        self.calls.append(("status", tuple(plugs)))
        for plug in plugs:
            queue = self._pending.get(plug)
            if queue:
                self.states[plug] = queue.pop(0) if len(queue) > 1 else queue[0]
        return {plug: self.states[plug] for plug in plugs}

    def check(self, plug, on):
        if plug in self.refuse:
            raise FenceError(f"{plug} refused")

    def switch(self, plug, on):
        self.calls.append(("switch", plug, on))
        target = "on" if on else "off"
        self._pending[plug] = list(self.after_switch.get(plug, [target]))

    def listing(self):
        return {plug: (f"alias-{plug}", state) for plug, state in self.states.items()}

    def can_cycle(self):
        return self._cycle

    def cycle(self, plug):
        self.calls.append(("cycle", plug))
        self._pending[plug] = list(self.after_switch.get(plug, ["off", "on"]))


def act(outlets, action, plugs, **options):
    opts = {"--action": action, "--power-timeout": "0.3"}
    opts.update({f"--{key.replace('_', '-')}": str(value) for key, value in options.items()})
    return run_action(opts, outlets, plugs)


def switches(outlets):
    return [call for call in outlets.calls if call[0] in ("switch", "cycle")]


# -- status -----------------------------------------------------------------------------


def test_status_exit_codes(capsys):
    assert act(FakeOutlets({"a": "on", "b": "off"}), "status", ["a", "b"]) == EXIT_OK
    assert act(FakeOutlets({"a": "off", "b": "off"}), "status", ["a", "b"]) == EXIT_OFF
    assert capsys.readouterr().out.splitlines() == ["Status: ON", "Status: OFF"]


def test_status_of_an_unknown_state_is_an_error():
    with pytest.raises(FenceError, match="unknown power state"):
        act(FakeOutlets({"a": "off", "b": "pending_off"}), "status", ["a", "b"])


def test_no_plug_is_an_error_before_any_read():
    outlets = FakeOutlets({})
    with pytest.raises(FenceError, match="no plug given"):
        act(outlets, "off", [])
    assert outlets.calls == []


# -- off / on ---------------------------------------------------------------------------


def test_off_every_plug_then_verified(capsys):
    outlets = FakeOutlets({"a": "on", "b": "on"})
    assert act(outlets, "off", ["a", "b"]) == EXIT_OK
    assert switches(outlets) == [("switch", "a", False), ("switch", "b", False)]
    assert capsys.readouterr().out.strip() == "Success: Powered OFF"


def test_already_off_on_a_live_device_sends_nothing(capsys):
    outlets = FakeOutlets({"a": "off"})
    assert act(outlets, "off", ["a"]) == EXIT_OK
    assert switches(outlets) == []
    assert capsys.readouterr().out.strip() == "Success: Already OFF"


def test_a_cached_off_is_never_taken_for_done(capsys):
    """A device whose reads may predate the request (upsd's cache) gets
    the command even when it already reads off."""
    outlets = FakeOutlets({"a": "off"}, live=False)
    assert act(outlets, "off", ["a"]) == EXIT_OK
    assert switches(outlets) == [("switch", "a", False)]
    assert capsys.readouterr().out.strip() == "Success: Powered OFF"


def test_pending_states_are_waited_through():
    outlets = FakeOutlets({"a": "on"}, after_switch={"a": ["on", "pending_off", "pending_off", "off"]})
    assert act(outlets, "off", ["a"]) == EXIT_OK


def test_stuck_on_times_out_with_the_last_state():
    outlets = FakeOutlets({"a": "on", "b": "on"}, after_switch={"b": ["on"]})
    with pytest.raises(FenceError, match=r"power off not confirmed: still a off, b on after 0.3 s \(raise power_timeout"):
        act(outlets, "off", ["a", "b"])


def test_an_unknown_state_after_the_command_never_counts():
    outlets = FakeOutlets({"a": "on"}, after_switch={"a": ["unknown"]})
    with pytest.raises(FenceError, match="still a unknown"):
        act(outlets, "off", ["a"])


def test_one_refused_plug_switches_none():
    outlets = FakeOutlets({"a": "on", "b": "on"}, refuse={"b"})
    with pytest.raises(FenceError, match="b refused"):
        act(outlets, "off", ["a", "b"])
    assert switches(outlets) == []


def test_power_timeout_0_means_no_limit():
    outlets = FakeOutlets({"a": "on"}, after_switch={"a": ["on"] * 8 + ["off"]})
    assert act(outlets, "off", ["a"], power_timeout=0) == EXIT_OK


def test_switch_verified_alone():
    outlets = FakeOutlets({"a": "off"})
    switch_verified(outlets, ["a"], True, 0.3)
    assert outlets.states["a"] == "on"


# -- reboot -----------------------------------------------------------------------------


def test_reboot_off_then_on(capsys):
    outlets = FakeOutlets({"a": "on", "b": "on"})
    assert act(outlets, "reboot", ["a", "b"]) == EXIT_OK
    assert switches(outlets) == [("switch", "a", False), ("switch", "b", False), ("switch", "a", True), ("switch", "b", True)]
    assert capsys.readouterr().out.strip() == "Success: Rebooted"


def test_reboot_of_an_off_node_powers_it_on():
    outlets = FakeOutlets({"a": "off"})
    assert act(outlets, "reboot", ["a"]) == EXIT_OK
    assert switches(outlets) == [("switch", "a", True)]


def test_reboot_of_a_cached_off_node_still_switches_off_first():
    outlets = FakeOutlets({"a": "off"}, live=False)
    assert act(outlets, "reboot", ["a"]) == EXIT_OK
    assert switches(outlets) == [("switch", "a", False), ("switch", "a", True)]


def test_reboot_that_does_not_come_back_says_the_node_is_fenced():
    class NeverOn(FakeOutlets):
        def switch(self, plug, on):
            super().switch(plug, on)
            if on:
                self._pending[plug] = ["off"]

    with pytest.raises(FenceError, match=r"node fenced \(every plug verified off\) but it did not come back on"):
        act(NeverOn({"a": "on"}), "reboot", ["a"])


def test_reboot_with_one_plug_stuck_on_never_switches_on():
    outlets = FakeOutlets({"a": "on", "b": "on"}, after_switch={"b": ["on"]})
    with pytest.raises(FenceError, match="power off not confirmed"):
        act(outlets, "reboot", ["a", "b"])
    assert not [call for call in switches(outlets) if call[2:] == (True,)]


# -- method=cycle -------------------------------------------------------------------------


def test_cycle_needs_the_plug_seen_without_power():
    outlets = FakeOutlets({"a": "on"}, after_switch={"a": ["on", "off", "on"]}, cycle=True)
    assert act(outlets, "reboot", ["a"], method="cycle") == EXIT_OK
    assert switches(outlets) == [("cycle", "a")]


def test_cycle_never_seen_off_is_not_a_reboot():
    outlets = FakeOutlets({"a": "on"}, after_switch={"a": ["on"]}, cycle=True)
    with pytest.raises(FenceError, match="power cycle not confirmed"):
        act(outlets, "reboot", ["a"], method="cycle")


def test_cycle_pending_off_does_not_count_as_down():
    outlets = FakeOutlets({"a": "on"}, after_switch={"a": ["pending_off", "on"]}, cycle=True)
    with pytest.raises(FenceError, match="power cycle not confirmed"):
        cycle_verified(outlets, ["a"], 0.3, {"a": "on"})


def test_cycle_of_an_off_node_powers_it_on():
    outlets = FakeOutlets({"a": "off"}, cycle=True)
    assert act(outlets, "reboot", ["a"], method="cycle") == EXIT_OK
    assert switches(outlets) == [("switch", "a", True)]


def test_cycle_without_a_cycle_command_is_refused():
    with pytest.raises(FenceError, match="method=cycle"):
        act(FakeOutlets({"a": "on"}), "reboot", ["a"], method="cycle")


# -- list, monitor, device hooks -------------------------------------------------------


def test_list_status_rows(capsys):
    act(FakeOutlets({"1": "on", "2": "off", "3": "pending_on"}), "list-status", [], separator=";")
    assert capsys.readouterr().out.splitlines() == ["1;alias-1;ON", "2;alias-2;OFF", "3;alias-3;UNKNOWN"]


def test_implicit_plugs_status_details_and_extra_actions(capsys):
    class Chassis(FakeOutlets):
        implicit_plugs = ("chassis",)

        def status_details(self):
            return ["psu1: ok"]

        def extra_action(self, action):
            return 0 if action == "diag" else None

    chassis = Chassis({"chassis": "on"})
    assert act(chassis, "status", []) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == ["Status: ON", "psu1: ok"]
    assert act(chassis, "diag", []) == EXIT_OK


def test_an_unknown_action_is_refused():
    with pytest.raises(FenceError, match="not supported"):
        act(FakeOutlets({"a": "on"}), "frobnicate", ["a"])


def test_cycle_of_two_feeds_needs_both_down_in_one_read():
    """Each feed cycled at its own time, never both down at once: the node
    never lost power, and the reboot is not confirmed."""
    outlets = FakeOutlets({"a": "on", "b": "on"}, after_switch={"a": ["off", "on", "on", "on"], "b": ["on", "on", "off", "on"]},
                          cycle=True)
    with pytest.raises(FenceError, match="power cycle not confirmed"):
        act(outlets, "reboot", ["a", "b"], method="cycle")


def test_cycle_of_two_feeds_down_together_is_a_reboot():
    outlets = FakeOutlets({"a": "on", "b": "on"}, after_switch={"a": ["on", "off", "on"], "b": ["on", "off", "on"]}, cycle=True)
    assert act(outlets, "reboot", ["a", "b"], method="cycle") == EXIT_OK
