"""The connection to upsd: TLS, peers that close or go silent, the delay,
secrets in the debug log, and the protocol's quoting."""

import socket

import pytest
from nut_helpers import FakeUpsd, fencer, run_agent

from infrapower.lab import nut
from infrapower.nut.client import NutClient, NutSettings, quote, split_words


# -- TLS ------------------------------------------------------------------------------


def test_tls_with_the_right_ca(nutlab):
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="status", ssl_ca=nut.tls_files(nutlab)["ca"]))
    assert (run.rc, run.out.strip()) == (0, "Status: ON"), run
    assert "SSL handshake done successfully" in nutlab.path("logs", "upsd.log").read_text()


def test_tls_with_the_wrong_ca_is_refused(nutlab):
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="off", ssl_ca=nut.tls_files(nutlab)["other_ca"]))
    assert run.rc == 1 and "CERTIFICATE_VERIFY_FAILED" in run.err and "ssl_ca" in run.err, run
    assert "Traceback" not in run.err


@pytest.fixture(scope="module")
def plain_upsd_port(lab):
    """A second upsd over the same drivers, without a certificate."""
    return nut.start_upsd(lab, "upsd-plain", tls=False)


def test_tls_required_but_not_offered_is_refused(nutlab, plain_upsd_port):
    options = fencer(nutlab, plug="tpdu:1", action="off", ipport=plain_upsd_port, ssl_required=1)
    run = run_agent(options)
    assert run.rc == 1 and "does not offer TLS" in run.err and "FEATURE-NOT-CONFIGURED" in run.err, run
    with nut.NutSession(plain_upsd_port) as session:
        assert session.get_var("tpdu", "outlet.1.status") == "on"


def test_tls_asked_is_tls_required(nutlab, plain_upsd_port):
    """ssl=1 without ssl_required used to fall back to clear text (and
    send the password) when upsd refused STARTTLS: a downgrade anyone on
    the path could force.  Asking for TLS now means TLS or nothing."""
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="status", ipport=plain_upsd_port, ssl=1))
    assert run.rc == 1 and "does not offer TLS" in run.err and "nothing is sent in clear text" in run.err, run


# -- peers that close or go silent ------------------------------------------------------


def test_upsd_closing_mid_command(nutlab):
    with FakeUpsd(upstream_port=nutlab.port("upsd"), cut_at="INSTCMD", on_cut="close") as fake:
        run = run_agent(fencer(nutlab, plug="tpdu:1", action="off", ipport=fake.port))
    assert run.rc == 1 and "closed the connection" in run.err, run
    assert "Traceback" not in run.err


def test_upsd_going_silent_mid_command_bounded_by_shell_timeout(nutlab):
    with FakeUpsd(upstream_port=nutlab.port("upsd"), cut_at="INSTCMD", on_cut="hang") as fake:
        run = run_agent(fencer(nutlab, plug="tpdu:1", action="off", ipport=fake.port, shell_timeout=2))
    assert run.rc == 1 and "stopped answering (timeout 2 s)" in run.err, run
    assert run.seconds < 2 + 1.0, run


def test_black_hole_from_the_start_bounded_by_shell_timeout(nutlab):
    with FakeUpsd() as fake:  # accepts, never answers
        run = run_agent(fencer(nutlab, plug="tpdu:1", action="off", ipport=fake.port, shell_timeout=2))
        assert fake.accepted, "the agent never connected"
    assert run.rc == 1 and "stopped answering" in run.err, run
    assert run.seconds < 2 + 1.0, run


def test_nothing_listening(nutlab):
    # A bound socket that does not listen holds the port (no one else can
    # take it meanwhile) and refuses connections.
    with socket.socket() as holder:
        holder.bind((nut.HOST, 0))
        run = run_agent(fencer(nutlab, plug="tpdu:1", action="status", ipport=holder.getsockname()[1]))
    assert run.rc == 1 and "cannot connect to upsd" in run.err, run


# -- secrets and quoting --------------------------------------------------------------


def test_verbose_never_shows_the_password(nutlab):
    run = run_agent(fencer(nutlab, plug="tpdu:1", action="status", verbose=1))
    assert run.rc == 0, run
    assert "upsd <- PASSWORD ****" in run.err, run
    assert nut.FENCER_PASSWORD not in run.err and "fence me" not in run.err


def test_masking_of_a_password_with_quotes_and_backslashes(caplog):
    client = NutClient(NutSettings("127.0.0.1", 1, verbose=True))
    secret = 'a "b" \\c'
    client._secret_words.add(quote(secret))
    assert client._masked(f"PASSWORD {quote(secret)}") == "PASSWORD ****"
    assert secret not in client._masked(f"SOMETHING {quote(secret)} else")


@pytest.mark.parametrize("value", ["plain", "fence me now", 'say "hi"', "back\\slash", "", "a\tb"])
def test_quote_round_trips(value):
    assert split_words(f"VAR ups x {quote(value)}")[3] == value
