"""Options to settings, and every parser the agents run before any I/O:
plugs, host names, NUT's words, and the freshness rule for upsd's cache."""

import socket
import time

import pytest

from infrapower.errors import FenceError
from infrapower.fence import is_number, plugs_from
from infrapower.errors import NutError
from infrapower.nut.words import quote, split_words
from infrapower.nut.outlets import Order
from infrapower.options import count_option, ipmi_settings, kg_option, nut_settings, timeout_option
from infrapower.resolve import check_host_name


# -- options -> settings -------------------------------------------------------------------


def test_nut_settings_any_tls_option_asks_for_tls():
    base = {"--ip": "nut.example", "--ipport": "3493"}
    assert not nut_settings(base).tls
    assert nut_settings(dict(base, **{"--ssl": "1"})).tls
    assert not nut_settings(dict(base, **{"--ssl": "0"})).tls  # fencing.py keeps "0" present
    assert nut_settings(dict(base, **{"--ssl-required": "yes"})).tls
    with_ca = nut_settings(dict(base, **{"--ssl-ca": "/etc/ca.pem"}))
    assert with_ca.tls and with_ca.ca == "/etc/ca.pem"


def test_nut_settings_timeouts_never_unlimited():
    settings = nut_settings({"--ip": "h", "--shell-timeout": "0"})  # pacemaker-fenced's 0
    assert settings.timeout == 5.0 and settings.port == 3493


@pytest.mark.parametrize("port", ["0", "65536", "３", "-1", "x"])
def test_bad_ports_are_refused(port):
    with pytest.raises(FenceError, match="ipport"):
        nut_settings({"--ip": "h", "--ipport": port})


def test_ipmi_settings():
    settings = ipmi_settings({"--ip": "bmc", "--username": "admin", "--password": "x" * 20, "--cipher": "17",
                              "--privlvl": "OPERATOR", "--hexadecimal-kg": "00" * 20})
    assert (settings.port, settings.cipher_suite, settings.privilege, settings.kg) == (623, 17, "operator", None)


@pytest.mark.parametrize("options, message", [
    ({"--password": "x" * 21}, "at most 20 bytes"),
    ({"--cipher": "0"}, "cipher suite 0"),
    ({"--cipher": "１７"}, "cipher must be"),
    ({"--cipher": "4"}, "not supported"),
    ({"--hexadecimal-kg": "zz"}, "hexadecimal"),
    ({"--hexadecimal-kg": "11" * 21}, "longer than 20 bytes"),
])
def test_ipmi_settings_refusals(options, message):
    with pytest.raises(FenceError, match=message):
        ipmi_settings(dict({"--ip": "bmc"}, **options))


def test_kg_option():
    assert kg_option("0x" + "ab" * 20) == bytes([0xAB]) * 20
    assert kg_option("") is None


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "x", "1,5"])
def test_timeouts_must_be_numbers(value):
    with pytest.raises(FenceError, match="power_timeout must be a number of seconds"):
        timeout_option({"--power-timeout": value}, "--power-timeout", None)


def test_count_option():
    assert count_option({"--min-psus": "2"}, "--min-psus") == 2
    with pytest.raises(FenceError, match="min_psus must be a count"):
        count_option({"--min-psus": "-1"}, "--min-psus")


# -- plugs ---------------------------------------------------------------------------------


def test_plugs_split():
    assert plugs_from({"--plug": "pdu1:3,pdu2:3"}) == ["pdu1:3", "pdu2:3"]
    assert plugs_from({"--plug": "a;b", "--plug-separator": ";"}) == ["a", "b"]
    assert plugs_from({}) == []


@pytest.mark.parametrize("plug", ["1,,2", "1,", ",1", " 3", "3 ", "1\x073", "a\x7f"])
def test_malformed_plugs(plug):
    with pytest.raises(FenceError, match="plug"):
        plugs_from({"--plug": plug})


@pytest.mark.parametrize("text, number", [("3", True), ("03", True), ("３", False), ("٣", False), ("1.3", False), ("", False)])
def test_outlet_numbers_are_ascii_digits(text, number):
    assert is_number(text) is number


# -- host names ----------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["a..b", ".a", "a" * 254, "a" * 64 + ".b", "a b", ""])
def test_host_names_no_resolver_could_take(host):
    with pytest.raises(socket.gaierror, match="not a valid host name"):
        check_host_name(host)


@pytest.mark.parametrize("host", ["pdu1", "pdu1.example.com.", "a" * 63 + ".b", "bücher.example"])
def test_host_names_that_are_fine(host):
    check_host_name(host)


# -- NUT words -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["plain", "fence me now", 'say "hi"', "back\\slash", "", "a\tb", "é"])
def test_quote_round_trips(value):
    assert split_words(f"VAR ups x {quote(value)}")[3] == value


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\0b"])
def test_quote_refuses_line_breaks(value):
    with pytest.raises(NutError, match="line break"):
        quote(value)


# -- upsd's cache: when a read counts ----------------------------------------------------


def test_a_cached_target_state_counts_only_after_a_poll_period():
    order = Order("off", fresh_after=60, tracked=True)
    assert order.vouch("off") == "cached off"
    order = Order("off", fresh_after=0, tracked=True)
    time.sleep(0.001)
    assert order.vouch("off") == "off"


def test_a_change_seen_after_tracking_success_counts_at_once():
    order = Order("off", fresh_after=60, tracked=True)
    assert order.vouch("on") == "on"
    assert order.vouch("off") == "off"


def test_without_tracking_only_the_poll_period_counts():
    order = Order("off", fresh_after=60, tracked=False)
    assert order.vouch("on") == "on"
    assert order.vouch("off") == "cached off"


def test_settings_never_show_a_secret():
    from infrapower.options import snmp_settings

    shown = " ".join(repr(settings) for settings in (
        nut_settings({"--ip": "h", "--password": "nut-secret"}),
        ipmi_settings({"--ip": "h", "--password": "ipmi-secret", "--hexadecimal-kg": "ab" * 20}),
        snmp_settings({"--ip": "h", "--snmp-version": "3", "--username": "u", "--password": "auth-secret",
                       "--snmp-priv-passwd": "priv-secret", "--community": "community-secret"}),
    ))
    for secret in ("nut-secret", "ipmi-secret", "abab", "auth-secret", "priv-secret", "community-secret"):
        assert secret not in shown


@pytest.mark.parametrize("options, message", [
    ({"--snmp-version": "4"}, "snmp_version"),
    ({"--snmp-version": "3"}, "needs username"),
    ({"--snmp-version": "3", "--username": "u", "--snmp-sec-level": "authNoPriv"}, "needs password"),
    ({"--snmp-version": "3", "--username": "u", "--password": "k", "--snmp-sec-level": "authPriv"}, "snmp_priv_passwd"),
    ({"--snmp-version": "3", "--username": "u", "--password": "k", "--snmp-auth-prot": "SHA-1024"}, "snmp_auth_prot"),
])
def test_snmp_settings_refusals(options, message):
    from infrapower.options import snmp_settings

    with pytest.raises(FenceError, match=message):
        snmp_settings(dict({"--ip": "pdu"}, **options))


def test_snmp_settings_level_implied_by_the_keys():
    from infrapower.options import snmp_settings

    settings = snmp_settings({"--ip": "pdu", "--snmp-version": "3", "--username": "u", "--password": "k",
                              "--snmp-auth-prot": "sha-256"})
    assert (settings.usm.level, settings.usm.auth_protocol, settings.port, settings.version) == ("authNoPriv", "SHA-256", 161, "3")
