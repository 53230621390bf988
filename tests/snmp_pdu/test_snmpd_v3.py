"""fence_snmp_pdu against net-snmp's snmpd, an SNMP engine that shares no
code with our client (snmpsim, the lab's PDUs, is built on pysnmp): every
SNMPv3 auth × priv protocol the agent offers, an engine reboot, clock
skew, wrong keys, a forced mapping that does not fit, bad plugs."""

import socket
import time

import pytest
from snmp_pdu_helpers import AGENT, assert_one_line_error
from snmpd_peer import (AUTH_KEY, NO_PDU_COMMUNITY, OUTLET_CONTROL, PRIV_KEY, USERS, Proxy, run_agent,
                        user_name)

from infrapower.errors import SnmpError
from infrapower.snmp.session import Session, SnmpSettings
from infrapower.snmp.usm import AUTH_PROTOCOLS, PRIV_KEY_BYTES, UsmUser, extend_key, hash_of, localized_key

ON, OFF = "1", "2"  # sPDUOutletCtl values as net-snmp's snmpget prints them


def session(port, auth="SHA-256", priv="AES", timeout=3.0):
    usm = UsmUser(user_name(auth, priv), "authPriv" if priv else "authNoPriv", auth, AUTH_KEY, priv, PRIV_KEY)
    return Session(SnmpSettings("127.0.0.1", port, version="3", usm=usm, timeout=timeout))


# -- every protocol combination, verified through net-snmp's own view ---------------


@pytest.mark.parametrize("user", USERS, ids=lambda user: user_name(*user))
def test_every_auth_and_priv_protocol_switches_two_plugs(peer, user):
    status = run_agent(AGENT, peer.port, user, action="status", plug="1,node3")
    assert status.returncode == 0 and "ON" in status.stdout, status.stderr

    off = run_agent(AGENT, peer.port, user, action="off", plug="1,node3")
    assert off.returncode == 0 and "Success" in off.stdout, off.stderr
    assert peer.outlets_on() == {1: False, 2: True, 3: False, 4: True}
    assert peer.snmpget(f"{OUTLET_CONTROL}.3") == OFF  # net-snmp's client agrees
    assert run_agent(AGENT, peer.port, user, action="status", plug="1,node3").returncode == 2

    on = run_agent(AGENT, peer.port, user, action="on", plug="1,node3")
    assert on.returncode == 0, on.stderr
    assert peer.outlets_on() == {1: True, 2: True, 3: True, 4: True}
    assert peer.snmpget(f"{OUTLET_CONTROL}.1") == ON


def test_list_status_and_v2c_against_snmpd(peer):
    peer.set_outlet(2, False)
    result = run_agent(AGENT, peer.port, None, action="list-status", snmp_version="2c")
    assert result.stdout.splitlines() == ["1,node1,ON", "2,node2,OFF", "3,node3,ON", "4,node4,ON"], result.stderr


def test_net_snmp_localizes_keys_as_we_do(snmpd):
    """RFC 3414 A.2 for SHA-2 (RFC 7860) and the Blumenthal extension of
    AES-192/256 keys: the keys snmpd derived and saved for every user
    equal ours for its engine ID."""
    snmpd.stop()  # snmpd saves its users (localized keys) when it stops
    engine_id, saved = snmpd.engine_id(), snmpd.persisted_users()
    for auth, priv in USERS:
        hash_factory = hash_of(AUTH_PROTOCOLS[auth][0])
        auth_key, priv_key = saved[user_name(auth, priv)]
        assert auth_key == localized_key(hash_factory, AUTH_KEY, engine_id), (auth, priv)
        if priv:
            ours = extend_key(hash_factory, localized_key(hash_factory, PRIV_KEY, engine_id), PRIV_KEY_BYTES[priv])
            assert priv_key == ours[: len(priv_key)] and len(priv_key) >= min(16, len(ours)), (auth, priv)
    snmpd.start()


# -- engine reboot, clock skew -------------------------------------------------------


def test_an_engine_reboot_raises_boots_and_the_agent_and_a_live_session_follow(peer):
    live = session(peer.port)
    try:
        assert live.get([f"{OUTLET_CONTROL}.1"]) == [(f"{OUTLET_CONTROL}.1", 1)]
        boots_before = live._usm.clock()[0]
        peer.restart()
        # The live session still holds the old boots: snmpd answers with an
        # authenticated notInTimeWindow report, the session re-synchronises.
        assert live.get([f"{OUTLET_CONTROL}.2"]) == [(f"{OUTLET_CONTROL}.2", 1)]
        assert live._usm.clock()[0] == boots_before + 1
    finally:
        live.close()
    result = run_agent(AGENT, peer.port, ("SHA", "AES"), action="off", plug="2")
    assert result.returncode == 0, result.stderr
    assert peer.outlets_on()[2] is False


@pytest.mark.parametrize("boots_skew, time_skew, requests", [
    (0, 100, 1), (0, -100, 1),  # inside the 150 s window: snmpd answers at once
    (0, 1000, 2), (0, 10**9, 2), (1, 0, 2), (-1, 0, 2),  # outside: one authenticated correction, one re-send
])
def test_clock_skew_inside_the_window_is_accepted_beyond_it_resynchronised_once(peer, boots_skew, time_skew, requests):
    with Proxy(peer.port) as proxy:
        skewed = session(proxy.port)
        try:
            skewed.get([f"{OUTLET_CONTROL}.1"])
            usm = skewed._usm
            boots, engine_time = usm.clock()
            # As if our estimate of snmpd's clock had drifted.
            usm._set_clock(max(0, boots + boots_skew), max(0, engine_time + time_skew))
            before = len(proxy.requests)
            assert skewed.get([f"{OUTLET_CONTROL}.4"]) == [(f"{OUTLET_CONTROL}.4", 1)]
            assert len(proxy.requests) - before == requests
            if requests == 2:
                assert usm.clock()[0] == boots and abs(usm.clock()[1] - engine_time) <= 2
        finally:
            skewed.close()


# -- wrong credentials: bounded, one line, exit 1 ------------------------------------


@pytest.mark.parametrize("change, expected", [
    ({"password": "wrong-auth-key"}, "wrong digest"),
    ({"snmp_auth_prot": "MD5"}, "wrong digest"),
    ({"snmp_priv_passwd": "wrong-priv-key"}, "snmp_priv_passwd"),  # snmpd drops what it cannot decrypt
    ({"snmp_priv_prot": "DES"}, "snmp_priv_passwd"),
    ({"username": "nobody"}, "unknown user name"),
    ({"snmp_sec_level": "noAuthNoPriv"}, "authorizationError"),  # rwuser ... priv
], ids=lambda value: "-".join(value) if isinstance(value, dict) else None)
def test_wrong_keys_fail_within_the_timeout_with_one_line(peer, change, expected):
    started = time.monotonic()
    result = run_agent(AGENT, peer.port, ("SHA", "AES"), action="off", plug="1", shell_timeout=2, **change)
    elapsed = time.monotonic() - started
    error = assert_one_line_error(result)
    assert expected in error and "wrong-" not in error and PRIV_KEY not in error
    assert elapsed < 4.5 and peer.outlets_on()[1] is True


# -- a mapping that reads no outlet ------------------------------------------------------


@pytest.mark.parametrize("action", ["list-status", "list", "monitor", "status", "off"])
def test_a_forced_mapping_that_does_not_fit_is_an_error_naming_it_and_the_sysobjectid(peer, action):
    result = run_agent(AGENT, peer.port, ("SHA", "AES"), action=action, plug="1", mib="eaton_epdu")
    error = assert_one_line_error(result)
    assert "eaton_epdu" in error and ".1.3.6.1.4.1.318.1.3.4.4" in error and not result.stdout
    assert peer.outlets_on()[1] is True


@pytest.mark.parametrize("action", ["list-status", "monitor", "status"])
def test_a_host_that_is_no_pdu_is_an_error_even_with_a_mapping_forced(peer, action):
    forced = run_agent(AGENT, peer.port, None, action=action, plug="1", mib="apc_pdu", community=NO_PDU_COMMUNITY)
    error = assert_one_line_error(forced)
    assert "apc_pdu" in error and "sysObjectID" in error and not forced.stdout
    detected = run_agent(AGENT, peer.port, None, action=action, plug="1", community=NO_PDU_COMMUNITY)
    assert "unknown PDU" in assert_one_line_error(detected)


# -- plugs: one grammar, refused before any I/O ------------------------------------------


@pytest.mark.parametrize("plug", ["３", "٣", "1.3", "1:٣", "１:２", "-1", "1\x07", "٣,1"])
def test_a_plug_outside_the_grammar_is_refused_before_any_io(plug):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(0.3)
        result = run_agent(AGENT, listener.getsockname()[1], None, action="off", plug=plug)
        with pytest.raises(socket.timeout):
            listener.recv(65535)  # not one datagram reached the "PDU"
    error = assert_one_line_error(result)
    assert "plug" in error


def test_a_plug_is_refused_before_name_resolution():
    result = subprocess_agent({"ip": "pdu.invalid", "action": "off", "plug": "３", "community": "private"})
    error = assert_one_line_error(result)
    assert "ASCII digits" in error and "resolve" not in error


def subprocess_agent(options):
    import subprocess

    text = "".join(f"{key}={value}\n" for key, value in options.items())
    return subprocess.run([AGENT], input=text, capture_output=True, text=True, timeout=30)


def test_a_session_to_snmpd_answers_get_by_oid_in_any_order(peer):
    live = session(peer.port, "SHA-512", "AES-256")
    try:
        oids = [f"{OUTLET_CONTROL}.3", ".1.3.6.1.2.1.1.2.0", f"{OUTLET_CONTROL}.99"]
        assert live.get(oids) == [(oids[0], 1), (oids[1], ".1.3.6.1.4.1.318.1.3.4.4"), (oids[2], None)]
    finally:
        live.close()
    with pytest.raises(SnmpError):
        session(peer.port, timeout=0.5).set([(f"{OUTLET_CONTROL}.1", 7)])  # wrongValue from the script
