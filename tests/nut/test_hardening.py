"""fence_nut must not be lied into a success: by upsd's cache (what the
driver read at its last poll), by a man in the middle of STARTTLS, or by
input that merely looks like a plug.  Each test here failed on the code
before the hardening issue (#10)."""

import time

import pytest
from nut_helpers import FakeUpsd, fencer, run_agent

from infrapower.lab import nut
from infrapower.lab.core import wait_until
from infrapower.nut.client import NutError, quote

SLOW_POLL = 4  # seconds between the test driver's reads of its device


def _no_traceback(run):
    assert "Traceback" not in run.err, run


def _ups_on(lab, name):
    return lab.rack.read()["upses"][name]["on"]


def _outlet_on(lab, outlet):
    return lab.rack.read()["outlets"][outlet]["on"]


def _tpdu_status(lab, number):
    with nut.NutSession(lab.port("upsd")) as session:
        return session.get_var("tpdu", f"outlet.{number}.status")


# -- upsd's cache ------------------------------------------------------------------------


@pytest.fixture
def slow_ups2(nutlab):
    """ups2 behind a driver that reads it every SLOW_POLL s, and off:
    fenced once, as a user would have done before switching it back on by
    hand."""
    nut.set_nut_fault(nutlab, "ups2", "slow_poll", seconds=SLOW_POLL)
    run = run_agent(fencer(nutlab, plug="ups2", action="off", power_timeout=SLOW_POLL * 3))
    assert run.rc == 0 and not _ups_on(nutlab, "ups2"), run
    return nutlab


def test_off_after_a_change_at_the_device_is_sent_not_assumed(slow_ups2):
    """Switched back on at the device within the driver's poll: upsd still
    says OFF.  The old agent answered "Success: Already OFF", exit 0, with
    the UPS on.  Now the command goes out and the state counts only once
    the driver has polled since."""
    slow_ups2.rack.set_ups("ups2", True)
    run = run_agent(fencer(slow_ups2, plug="ups2", action="off", power_timeout=SLOW_POLL * 3))
    assert (run.rc, run.out.strip()) == (0, "Success: Powered OFF"), run
    assert not _ups_on(slow_ups2, "ups2")


def test_a_cached_state_is_not_a_confirmation_within_power_timeout(slow_ups2):
    """With power_timeout shorter than the driver's poll, no read can
    confirm the command: exit 1, and the line says why."""
    slow_ups2.rack.set_ups("ups2", True)
    run = run_agent(fencer(slow_ups2, plug="ups2", action="off", power_timeout=1))
    assert run.rc == 1 and "cached off" in run.err and "power_timeout" in run.err, run
    _no_traceback(run)


def test_reboot_does_not_skip_off_on_a_stale_off(slow_ups2):
    slow_ups2.rack.set_ups("ups2", True)
    since = time.time()
    run = run_agent(fencer(slow_ups2, plug="ups2", action="reboot", power_timeout=SLOW_POLL * 3))
    assert (run.rc, run.out.strip()) == (0, "Success: Rebooted"), run
    states = [e["state"] for e in slow_ups2.rack.power_log() if e["t"] >= since and e["name"] == "ups2"]
    assert states[-2:] == ["off", "on"], states
    assert _ups_on(slow_ups2, "ups2")


def test_verbose_status_says_how_old_it_may_be(slow_ups2):
    run = run_agent(fencer(slow_ups2, plug="ups2", action="status", verbose=1))
    assert run.rc in (0, 2), run
    assert f"ups2: upsd serves what its driver read at its last poll: a state may be up to {SLOW_POLL + 1:g} s old" in run.err, run


def test_snmp_ups_off_after_a_change_at_the_pdu(nutlab):
    """The measured defect, through the real snmp-ups: off, on at the PDU
    itself, off again within the driver's poll window."""
    run = run_agent(fencer(nutlab, plug="pdu2:3", action="off"))
    assert run.rc == 0 and not _outlet_on(nutlab, "pdu2:3"), run
    nutlab.rack.switch_outlet("pdu2:3", True)
    wait_until(lambda: _outlet_on(nutlab, "pdu2:3"), time.monotonic() + 5, "pdu2:3 on at the PDU")
    # Room for snmp-ups' whole poll period (pollinterval 1, pollfreq 0:
    # 1 + 0 + 1 + 2 s walk + 1 s margin) when upsd still shows the old off.
    run = run_agent(fencer(nutlab, plug="pdu2:3", action="off", power_timeout=10))
    assert (run.rc, run.out.strip()) == (0, "Success: Powered OFF"), run
    assert not _outlet_on(nutlab, "pdu2:3")


# -- STARTTLS --------------------------------------------------------------------------


def test_bytes_injected_after_ok_starttls_are_refused(nutlab):
    """CVE-2011-0411 class: plaintext appended to upsd's OK STARTTLS must
    never be read as if it came through TLS."""
    forged = b'OK\nOK\nVAR tpdu outlet.1.status "off"\nOK\n'
    with FakeUpsd(upstream_port=nutlab.port("upsd"), starttls="inject", inject=forged) as fake:
        run = run_agent(fencer(nutlab, plug="tpdu:1", action="off", ipport=fake.port, ssl_ca=nut.tls_files(nutlab)["ca"]))
    assert run.rc == 1 and "after OK STARTTLS" in run.err, run
    assert "Success" not in run.out
    _no_traceback(run)
    assert _tpdu_status(nutlab, 1) == "on"


@pytest.mark.parametrize("tls_option", [{"ssl_ca": None}, {"ssl": 1}, {"ssl_required": 1}])
def test_stripped_starttls_never_falls_back_to_clear_text(nutlab, tls_option):
    """A man in the middle answers ERR to STARTTLS: asking for TLS in any
    way means TLS is required; the password never goes out in clear."""
    options = {key: (nut.tls_files(nutlab)["ca"] if value is None else value) for key, value in tls_option.items()}
    with FakeUpsd(upstream_port=nutlab.port("upsd"), starttls="strip") as fake:
        run = run_agent(fencer(nutlab, plug="tpdu:1", action="off", ipport=fake.port, **options))
        lines = list(fake.lines)
    assert run.rc == 1 and "does not offer TLS" in run.err and "clear text" in run.err, run
    assert lines == ["STARTTLS"], lines  # nothing after it: no USERNAME, no PASSWORD
    assert _tpdu_status(nutlab, 1) == "on"


def test_ssl_ca_that_does_not_exist_is_named(nutlab):
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="status", ssl_ca="/nonexistent.pem"))
    assert run.rc == 1 and "ssl_ca /nonexistent.pem: No such file or directory" in run.err, run
    _no_traceback(run)


# -- input ---------------------------------------------------------------------------------


# (A trailing blank never reaches the agent: fencing.py strips stdin lines.)
@pytest.mark.parametrize("plug", ["３", "٣", " 3", "1.3", "1,,2", "1,", "tpdu:３", "tp du:3", "1\x073"])
def test_plugs_that_only_look_like_outlets_are_refused(nutlab, plug):
    run = run_agent(fencer(nutlab, ups="tpdu", plug=plug, action="off"))
    assert run.rc == 1 and run.err.count("ERROR:") == 1, run
    _no_traceback(run)
    assert all(_tpdu_status(nutlab, n) == "on" for n in (1, 2, 3))


@pytest.mark.parametrize("plug", [" 3", "1,,2", "1\x073"])
def test_malformed_plugs_are_refused_before_any_io(plug):
    """Nothing listens on port 1: the plug's error, not the connection's."""
    run = run_agent({"ip": "127.0.0.1", "ipport": 1, "ups": "tpdu", "plug": plug, "action": "off"})
    assert run.rc == 1 and "plug" in run.err and "connect" not in run.err, run


@pytest.mark.parametrize("host", ["a..b", ".a", "a" * 100_000, "a" * 64 + ".example"])
def test_unusable_host_names_are_one_line(host):
    run = run_agent({"ip": host, "plug": "tpdu:1", "action": "status"})
    assert run.rc == 1 and "not a valid host name" in run.err, run
    _no_traceback(run)
    assert len(run.err) < 400, run


def test_a_misspelt_option_never_echoes_its_value(nutlab):
    options = fencer(nutlab, plug="tpdu:1", action="status")
    options["pasword"] = "s3cret-typo"
    run = run_agent(options)
    assert "s3cret-typo" not in run.err and "pasword=****" in run.err, run


@pytest.mark.parametrize("value", ["a\nINSTCMD tpdu outlet.1.load.off", "a\rb", "a\0b"])
def test_the_quoter_refuses_line_breaks(value):
    with pytest.raises(NutError, match="line break"):
        quote(value)
    # ... and never shows the value (it may be a password).
    try:
        quote(value)
    except NutError as error:
        assert value not in str(error)
