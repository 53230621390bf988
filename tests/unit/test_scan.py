"""infrapower scan's pure parts: ranges, ports, options, the writers.
Plain python3, no install, no network."""

import argparse
import shlex

import pytest

from infrapower.scan import ScanError, cli, output
from infrapower.scan.ipmi import parse_pong, ping_packet
from infrapower.scan.targets import address, parse_hosts, parse_ports

# -- ranges and ports -----------------------------------------------------------


def test_cidr_masks_skip_network_and_broadcast_but_not_on_31_and_32():
    assert parse_hosts(["192.0.2.0/30"]) == ["192.0.2.1", "192.0.2.2"]
    assert parse_hosts(["192.0.2.0/31"]) == ["192.0.2.0", "192.0.2.1"]
    assert parse_hosts(["192.0.2.7"]) == ["192.0.2.7"]
    assert len(parse_hosts(["10.1.2.0/24"])) == 254


def test_start_and_end_and_repeats_merge_in_order():
    assert parse_hosts(["192.0.2.0/30"], "192.0.2.2", "192.0.2.4") == ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]
    assert parse_hosts([], "127.0.0.1") == ["127.0.0.1"]
    assert parse_hosts([], "2001:db8::1", "2001:db8::2") == ["2001:db8::1", "2001:db8::2"]


@pytest.mark.parametrize("masks, start, end, words", [
    (["10.0.0.0/8"], None, None, "more than 4096"),
    (["300.1.1.0/24"], None, None, "not a CIDR mask"),
    ([], "192.0.2.9", "192.0.2.1", "comes before"),
    ([], None, "192.0.2.1", "needs --start_ip"),
    ([], "192.0.2.1", "2001:db8::1", "not the same IP version"),
    ([], "host.example", None, "not an IP address"),
    ([], None, None, "nothing to scan"),
    ([], "10.0.0.0", "10.0.255.255", "more than 4096"),
])
def test_bad_ranges_are_one_line(masks, start, end, words):
    with pytest.raises(ScanError) as error:
        parse_hosts(masks, start, end)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_max_hosts_can_be_raised():
    assert len(parse_hosts(["10.0.0.0/19"], max_hosts=8192)) == 8190


def test_ports():
    assert parse_ports(None, 161, "--snmp-port") == [161]
    assert parse_ports(["1161,1162", "1161", "2000"], 161, "--snmp-port") == [1161, 1162, 2000]
    for bad in ("0", "65536", "x", "３"):
        with pytest.raises(ScanError):
            parse_ports([bad], 161, "--snmp-port")
    assert address("2001:db8::1", 623) == "[2001:db8::1]:623"


def test_asf_ping_and_pong():
    ping = ping_packet(0x42)
    assert ping.hex() == "0600ff06000011be80420000"
    pong = bytes.fromhex("0600ff06000011be404200100000000000000000810000000000000000")
    assert parse_pong(pong, 0x42) == {"ipmi": True, "asf_version": "1.0"}
    assert parse_pong(pong, 0x43) is None  # another ping's pong
    assert parse_pong(b"garbage", 0x42) is None
    assert parse_pong(pong[:15], 0x42) is None


# -- options --------------------------------------------------------------------


def parse(argv):
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers()).prog = "scan"
    return parser.parse_args(["scan", *argv])


def test_defaults_scan_every_bus_with_public():
    plan = cli.make_plan(parse(["-s", "127.0.0.1"]))
    # and mDNS, where python-zeroconf is installed to browse with
    assert plan.buses[:3] == ("snmp", "nut", "ipmi") and plan.buses[3:] in ((), ("mdns",))
    assert [c.community for c in plan.credentials] == ["public"]
    assert (plan.snmp_ports, plan.nut_ports, plan.ipmi_ports) == ((161,), (3493,), (623,))
    assert plan.ipmi_user is None


def test_bus_selection_ports_communities_and_v3(tmp_path, monkeypatch):
    auth = tmp_path / "auth"
    auth.write_text("auth secret\n")
    monkeypatch.setenv(cli.PRIV_ENV, "priv secret")
    plan = cli.make_plan(parse(["-m", "192.0.2.0/30", "-S", "-O", "-c", "private", "-c", "public",
                                "--snmp-port", "1161,1162", "-p", "4000", "-u", "fencer", "-w", "sha",
                                "-W", str(auth), "-x", "aes", "-t", "0.5", "-T", "8"]))
    assert plan.buses == ("snmp", "nut") and plan.snmp_ports == (1161, 1162) and plan.nut_ports == (4000,)
    assert [c.community for c in plan.credentials[:2]] == ["private", "public"]
    user = plan.credentials[2].usm
    assert (user.user, user.level, user.auth_protocol, user.priv_protocol) == ("fencer", "authPriv", "SHA", "AES")
    assert (user.auth_key, user.priv_key) == ("auth secret", "priv secret")
    assert "secret" not in repr(plan)
    assert (plan.timeout, plan.threads) == (0.5, 8)


def test_ipmi_password_from_file_or_environment(tmp_path, monkeypatch):
    secret = tmp_path / "pw"
    secret.write_text("adminpw\n")
    assert cli.make_plan(parse(["-s", "10.0.0.1", "--ipmi-user", "admin", "--ipmi-password-file", str(secret)])).ipmi_password == "adminpw"
    monkeypatch.setenv(cli.IPMI_ENV, "fromenv")
    plan = cli.make_plan(parse(["-s", "10.0.0.1", "--ipmi-user", "admin"]))
    assert plan.ipmi_password == "fromenv" and "fromenv" not in repr(plan)


@pytest.mark.parametrize("argv, words", [
    (["-s", "10.0.0.1", "-l", "authPriv"], "need -u"),
    (["-s", "10.0.0.1", "-u", "fencer", "-l", "authNoPriv"], "-W"),
    (["-s", "10.0.0.1", "-u", "fencer", "-w", "SHA-999", "-W", "/dev/null"], "-w"),
    (["-s", "10.0.0.1", "-W", "/nonexistent", "-u", "x"], "-W file /nonexistent"),
    (["-s", "10.0.0.1", "-t", "0"], "--timeout"),
    (["-s", "10.0.0.1", "-T", "100000"], "--thread"),
    (["-s", "10.0.0.1", "-A"], "-A"),  # mDNS scans no range (or: no python-zeroconf here)
    ([], "nothing to scan"),
    (["-s", "10.0.0.1", "--ipmi-password-file", "/dev/null"], "needs --ipmi-user"),
])
def test_bad_options_are_one_line(argv, words, monkeypatch):
    monkeypatch.delenv(cli.AUTH_ENV, raising=False)
    with pytest.raises(ScanError) as error:
        cli.make_plan(parse(argv))
    assert words in str(error.value) and "\n" not in str(error.value)


def test_run_says_a_bad_option_in_one_line_with_exit_2(capsys):
    assert cli.run(parse(["-m", "nonsense"])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nonsense" in err


def test_argparse_errors_are_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as code:
        parse(["-t", "soon"])
    assert code.value.code == 2 and capsys.readouterr().err.count("\n") == 1


# -- writers ----------------------------------------------------------------------

PDU = {"kind": "snmp", "address": "192.0.2.10:161", "host": "192.0.2.10", "port": 161, "version": "1",
       "community": "private", "communities": ["private", "public"], "users": [], "sysoid": ".1.3.6.1.4.1.534.6.6.7",
       "mapping": "eaton_epdu", "conf_mapping": "eaton_epdu", "type": "pdu", "mfr": "EATON", "model": "ePDU",
       "switchable": True, "units": 2,
       "outlets": [{"id": "1:1", "name": "nc1", "state": "on"}, {"id": "2:1", "name": "Outlet 1", "state": "off"}]}
V3PDU = {"kind": "snmp", "address": "192.0.2.11:1161", "host": "192.0.2.11", "port": 1161, "version": "3",
         "sec_name": "fencer", "sec_level": "authPriv", "auth_protocol": "SHA-256", "priv_protocol": "AES-256",
         "communities": [], "users": ["fencer"], "mapping": "apc_pdu", "conf_mapping": "apc_pdu", "switchable": True,
         "units": 1, "outlets": [{"id": "3", "name": "db-1", "state": "on"}]}
UNKNOWN = {"kind": "snmp", "address": "192.0.2.12:161", "host": "192.0.2.12", "port": 161, "version": "1",
           "community": "public", "sysoid": ".1.3.6.1.4.1.8072.3.2.10", "mapping": None, "outlets": [],
           "note": "unknown PDU: sysObjectID .1.3.6.1.4.1.8072.3.2.10 matches no mapping of the NUT tables"}
UPSD = {"kind": "nut", "address": "192.0.2.20:3493", "host": "192.0.2.20", "port": 3493, "tls": "no",
        "devices": [{"name": "ups1", "desc": "UPS", "type": "ups", "outlets": 0},
                    {"name": "pdu1", "desc": "rack PDU", "type": "pdu", "outlets": 8, "driver": "snmp-ups"}]}
BMC = {"kind": "ipmi", "address": "192.0.2.30:623", "host": "192.0.2.30", "port": 623, "asf": True, "ipmi": True,
       "power": "on", "cipher": 3,
       "psus": [{"index": 1, "name": "PS1", "maker": "Delta", "model": "DPS-800", "serial": "S1", "rating_watts": 800,
                 "state": "ok"},
                {"index": 2, "name": "PS2", "maker": "Delta", "model": "DPS-800", "serial": "S2", "rating_watts": 800,
                 "state": "failed"}]}
GARBAGE = {"kind": "ipmi", "address": "192.0.2.31:623", "host": "192.0.2.31", "port": 623,
           "error": "192.0.2.31:623 answered, but not an ASF presence pong"}
RESULTS = [PDU, V3PDU, UNKNOWN, UPSD, BMC, GARBAGE]


def test_table_has_a_block_per_result():
    text = output.table(RESULTS)
    assert text.count("\nSNMP ") + text.startswith("SNMP ") == 3
    assert "2 outlets on 2 daisy-chained units, switchable" in text and "also answers: public" in text
    assert "PS2: Delta DPS-800, serial S2, 800 W, failed" in text
    assert "not an ASF presence pong" in text
    assert output.table([]) == "nothing found"


def test_ups_conf_sections():
    text = output.ups_conf(RESULTS, ipmi_user="admin", driver_installed=True)
    assert '[eaton_epdu-192-0-2-10]\n\tdriver = "snmp-ups"\n\tport = "192.0.2.10"' in text
    assert '\tmibs = "eaton_epdu"\n\tcommunity = "private"' in text
    assert '\tport = "192.0.2.11:1161"' in text and '\tsnmp_version = "v3"' in text
    assert '\tauthProtocol = "SHA256"' in text and '\tprivProtocol = "AES256"' in text
    assert "192-0-2-12" not in text  # no mapping, no section
    assert '\tdriver = "dummy-ups"\n\tport = "pdu1@192.0.2.20"' in text
    assert text.count('driver = "ipmi-psu"') == 2 and '\tpsu = 2' in text and 'username = "admin"' in text
    assert "password_file" in text and "\tpassword =" not in text
    without = output.ups_conf(RESULTS, driver_installed=False)
    assert "ipmi-psu\"" not in without and "install the ipmi-psu driver" in without


def test_ups_conf_names_the_nut_2_8_0_mapping():
    renamed = dict(PDU, mapping="eaton_pw_nm2", conf_mapping="pw")
    assert '\tmibs = "pw"' in output.ups_conf([renamed])
    newer = dict(PDU, mapping="hpe_pdu3_cis", conf_mapping=None)
    assert '\tmibs = "auto"   # NUT 2.8.0 has no hpe_pdu3_cis mapping' in output.ups_conf([newer])


def test_servers_skeleton():
    text = output.servers_file(RESULTS, ipmi_user="admin")
    assert "upsd = 192.0.2.20:3493" in text
    assert "[server-192-0-2-30]\n" in text and "\tbmc = 192.0.2.30\n" in text and "\tbmc_username = admin" in text
    assert "\t# psu.psu2 = DEVICE:OUTLET   # PS2: Delta DPS-800, serial S2" in text
    assert "\tsnmp = 192.0.2.11:1161\n\tmib = apc_pdu\n\tsnmp_version = v3" in text
    assert "password_script = PASSWORD_COMMAND" in text


def test_pcs_commands_hold_no_secret_and_parse_as_shell():
    lines, files = output.pcs_commands(RESULTS, ipmi_user="admin", secrets_dir="/keys")
    assert len(lines) == 4  # two PDUs, one upsd with outlets, one BMC
    words = [shlex.split(line) for line in lines]
    snmp1 = dict(w.split("=", 1) for w in words[0][5:])
    assert words[0][:5] == ["pcs", "stonith", "create", "fence-eaton_epdu-192-0-2-10-161", "fence_snmp_pdu"]
    assert snmp1["pcmk_host_map"] == "nc1:1\\:1" and snmp1["community"] == "private"
    snmp3 = dict(w.split("=", 1) for w in words[1][5:])
    assert snmp3["password_script"] == "cat /keys/fence-apc_pdu-192-0-2-11-1161.password"
    assert snmp3["snmp_priv_passwd_script"].startswith("cat /keys/") and "password" not in snmp3
    nut = dict(w.split("=", 1) for w in words[2][5:])
    assert words[2][4] == "fence_nut" and nut["pcmk_host_map"] == "NODE:pdu1\\:OUTLET" and "ssl" not in nut
    bmc = dict(w.split("=", 1) for w in words[3][5:])
    assert words[3][4] == "fence_ipmi_psu" and bmc["min_psus"] == "2" and bmc["cipher"] == "3"
    assert len(files) == 4 and all(f.startswith("/keys/") for f in files)
    assert "key files to create" in output.pcs_text(RESULTS)


def test_json_keeps_the_issue_fields():
    import json

    found = json.loads(output.to_json(RESULTS))
    assert all({"kind", "address"} <= set(r) for r in found)
    assert found[0]["community"] == "private" and found[1]["sec_name"] == "fencer"
    assert found[3]["devices"][1]["outlets"] == 8 and found[4]["psus"][1]["state"] == "failed"


# -- the presence sweep (ASF pings over one socket) -----------------------------------


def test_presence_sweep_matches_pongs_by_address_and_ends_in_one_timeout():
    import socket
    import threading
    import time

    from infrapower.scan.sweep import presence

    def responder(sock, answer):
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(512)
            except OSError:
                continue
            sock.sendto(answer(data), peer)

    def pong(data):
        return data[:4] + bytes.fromhex("000011be40") + data[9:10] + bytes.fromhex("0010000000000000000081") + bytes(9)

    stop = threading.Event()
    bmc, garbage, silent = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3))
    for sock in (bmc, garbage, silent):
        sock.bind(("127.0.0.1", 0))
    threads = [threading.Thread(target=responder, args=(bmc, pong)),
               threading.Thread(target=responder, args=(garbage, lambda data: b"\x00garbage"))]
    for thread in threads:
        thread.start()
    try:
        probes = {name: ("127.0.0.1", sock.getsockname()[1]) for name, sock in
                  (("bmc", bmc), ("garbage", garbage), ("silent", silent))}
        started = time.monotonic()
        found = presence({}, probes, 0.6)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for sock in (bmc, garbage, silent):
            sock.close()
    assert found["bmc"] == {"ipmi": True, "asf_version": "1.0"}
    assert "not an ASF presence pong" in found["garbage"]["error"]
    assert "silent" not in found
    assert 0.5 < elapsed < 1.0


def test_ups_conf_values_from_a_device_are_written_as_nut_reads_them():
    """A description a device gives may hold `#`, quotes and line breaks:
    written with the pack's quoter, NUT's parser reads one line back with
    the text (line breaks as blanks), never a comment or a second line."""
    from infrapower.nutconf.syntax import ConfFile
    from infrapower.scan.output import _quoted

    said = 'PDU #1\nrack "B"\\row'
    conf = ConfFile(f"[pdu]\n\tdesc = {_quoted(said)}\n\tport = {_quoted('10.0.0.5')}\n", "ups.conf", "ups.conf")
    assert conf.sections["pdu"].get("desc") == 'PDU #1 rack "B"\\row'
    assert conf.sections["pdu"].get("port") == "10.0.0.5"
    assert "\n" not in _quoted(said)
