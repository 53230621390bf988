"""infrapower scan against the lab's real peers (snmpsim PDUs, upsd, ipmi_sim
BMCs on random ports of 127.0.0.1, scanned with explicit ports), plus
silent and garbage-answering hosts on other loopback addresses; its
ups.conf started by NUT's own drivers, its pcs commands applied with
`pcs -f` to a CIB file.  The buses are named (-S -O -I): the default adds
mDNS, which would browse the host's own network (test_scan_netns.py
browses in namespaces)."""

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from scan_helpers import PACKAGE_ROOT, scan

from infrapower.lab import bmc as lab_bmc
from infrapower.lab import pdus as lab_pdus


def lab_ports(lab):
    return {
        "snmp": f"{lab.port('snmp:pdu1')},{lab.port('snmp:pdu2')}",
        "nut": str(lab.port("upsd")),
        "ipmi": ",".join(str(lab.port(f"bmc:{s}")) for s in ("clc", "nc1", "nc2")),
    }


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "bmc.pw"
    path.write_text(lab_bmc.ADMIN_PASSWORD + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def full_scan(rack, password_file):
    ports = lab_ports(rack)
    argv = ["-S", "-O", "-I", "-s", "127.0.0.1", "--snmp-port", ports["snmp"], "-p", ports["nut"], "--ipmi-port", ports["ipmi"],
            "-c", lab_pdus.WRITE_COMMUNITY, "-c", lab_pdus.READ_COMMUNITY,
            "--ipmi-user", lab_bmc.ADMIN_USER, "--ipmi-password-file", str(password_file),
            # every probe answers, so the scan ends with its details; the timeout only bounds a loaded machine
            # (a first community that never answers: test_scan_vs_nut_scanner.py)
            "-t", "6"]
    return rack, argv


def by_kind(results, kind):
    return [r for r in results if r["kind"] == kind]


def test_finds_every_pdu_upsd_and_bmc_of_the_lab(full_scan):
    lab, argv = full_scan
    result = scan(*argv, "--format", "json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    pdus = {r["port"]: r for r in by_kind(found, "snmp")}
    assert set(pdus) == {lab.port("snmp:pdu1"), lab.port("snmp:pdu2")}
    assert all("mapping" in pdu for pdu in pdus.values()), result.stdout  # a details probe that failed says why
    apc, eaton = pdus[lab.port("snmp:pdu1")], pdus[lab.port("snmp:pdu2")]
    assert (apc["mapping"], eaton["mapping"]) == ("apc_pdu", "eaton_epdu")
    assert apc["conf_mapping"] == "apc_pdu" and apc["type"] == "pdu" and apc["switchable"]
    # every community is tried on every host; the first that answers is used
    assert apc["community"] == lab_pdus.WRITE_COMMUNITY
    assert apc["communities"] == [lab_pdus.WRITE_COMMUNITY, lab_pdus.READ_COMMUNITY]
    assert [(o["id"], o["name"], o["state"]) for o in apc["outlets"][:3]] == [("1", "clc", "on"), ("2", "nc1", "on"),
                                                                              ("3", "nc2", "on")]
    assert len(eaton["outlets"]) == 8 and eaton["units"] == 1

    upsd, = by_kind(found, "nut")
    devices = {d["name"]: d for d in upsd["devices"]}
    assert devices["pdu1"]["outlets"] == 8 and devices["pdu1"]["type"] == "pdu"
    assert devices["ups1"]["type"] == "ups" and devices["clc-psu1"]["type"] == "psu"
    assert upsd["tls"] in ("offered", "verified")  # the lab's upsd has a certificate

    bmcs = by_kind(found, "ipmi")
    assert len(bmcs) == 3 and all(b["asf"] and b["ipmi"] and b["power"] == "on" for b in bmcs)
    psus = bmcs[0]["psus"]
    assert len(psus) == 2 and all(p["state"] == "ok" and p["maker"] and p["serial"] for p in psus)
    assert lab_bmc.ADMIN_PASSWORD not in result.stdout + result.stderr


def test_table_is_the_default(full_scan):
    _, argv = full_scan
    result = scan(*argv)
    assert result.returncode == 0, result.stderr
    assert "mapping apc_pdu" in result.stdout and "8 outlets, switchable: 1 clc on" in result.stdout
    assert "upsd, 11 devices" in result.stdout or "upsd," in result.stdout
    assert result.stdout.count("power on, cipher suite 3, 2 power supplies") == 3
    assert "scanned 1 host(s)" in result.stderr


def test_bmcs_without_credentials_answer_the_presence_ping_only(rack):
    result = scan("-s", "127.0.0.1", "-I", "--ipmi-port", lab_ports(rack)["ipmi"], "--json")
    found = json.loads(result.stdout)
    assert len(found) == 3 and all(r["asf"] and "power" not in r for r in found)


def test_a_wrong_bmc_password_is_one_line(rack, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it\n")
    result = scan("-s", "127.0.0.1", "-I", "--ipmi-port", str(rack.port("bmc:clc")), "--ipmi-user", "admin",
                  "--ipmi-password-file", str(wrong), "-q")
    assert result.returncode == 0 and "login failed:" in result.stdout and "wrong password" in result.stdout
    assert "Traceback" not in result.stderr and "not-it" not in result.stdout


def test_snmpv3_with_passphrases_from_the_environment(rack, tmp_path):
    user = lab_pdus.V3_USER
    auth = tmp_path / "auth"
    auth.write_text(user["auth_key"] + "\n")
    result = scan("-s", "127.0.0.1", "-S", "--snmp-port", str(rack.port("snmp:pdu2")), "-u", user["user"],
                  "-w", user["auth_proto"], "-x", user["priv_proto"], "-W", str(auth), "--json",
                  env={"INFRAPOWER_SNMP_PRIV_PASSWORD": user["priv_key"]})
    assert result.returncode == 0, result.stderr
    pdu, = json.loads(result.stdout)
    assert (pdu["sec_name"], pdu["sec_level"], pdu["mapping"]) == (user["user"], "authPriv", "eaton_epdu")
    assert "community" not in pdu and len(pdu["outlets"]) == 8
    assert user["priv_key"] not in result.stdout and user["auth_key"] not in result.stdout


# -- hosts that stay silent or answer garbage -------------------------------------------


class Garbage:
    """UDP and TCP on one loopback address, answering every datagram and
    connection with bytes no protocol accepts."""

    def __init__(self, host):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((host, 0))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((host, 0))
        self.tcp.listen(8)
        self.stop = False
        self.threads = [threading.Thread(target=self._udp, daemon=True), threading.Thread(target=self._tcp, daemon=True)]
        for thread in self.threads:
            thread.start()

    def _udp(self):
        self.udp.settimeout(0.1)
        while not self.stop:
            try:
                _, peer = self.udp.recvfrom(2048)
                self.udp.sendto(b"\x30\x03\x02\x01\xff garbage", peer)
            except OSError:
                continue

    def _tcp(self):
        self.tcp.settimeout(0.1)
        while not self.stop:
            try:
                connection, _ = self.tcp.accept()
            except OSError:
                continue
            with connection:
                try:
                    connection.sendall(b"SSH-2.0-nope\r\n" + b"\x00\xff" * 10 + b"\n")
                    connection.recv(100)
                except OSError:
                    pass

    def close(self):
        self.stop = True
        for thread in self.threads:
            thread.join()
        self.udp.close()
        self.tcp.close()


def test_garbage_answers_are_one_line_each_never_a_traceback():
    garbage = Garbage("127.77.0.2")
    try:
        port_udp, port_tcp = garbage.udp.getsockname()[1], garbage.tcp.getsockname()[1]
        result = scan("-S", "-O", "-I", "-s", "127.77.0.2", "--snmp-port", str(port_udp), "--ipmi-port", str(port_udp),
                      "-p", str(port_tcp), "-t", "1", "--json")
    finally:
        garbage.close()
    assert result.returncode == 0 and "Traceback" not in result.stderr
    found = json.loads(result.stdout)
    assert sorted(r["kind"] for r in found) == ["ipmi", "nut", "snmp"]
    assert all("\n" not in r["error"] for r in found)


def test_silent_hosts_produce_nothing_within_about_one_timeout():
    silent = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for index, sock in enumerate(silent):
            sock.bind((f"127.77.1.{index + 1}", 0))
        ports = ",".join(str(s.getsockname()[1]) for s in silent)
        started = time.monotonic()
        result = scan("-S", "-O", "-I", "-m", "127.77.1.0/29", "--snmp-port", ports, "--ipmi-port", ports, "-t", "1", "-T", "256",
                      "-c", "a", "-c", "b", "--json")
        elapsed = time.monotonic() - started
    finally:
        for sock in silent:
            sock.close()
    assert result.returncode == 0 and json.loads(result.stdout) == []
    assert elapsed < 1 + 2.5  # one timeout, plus the interpreter and the imports


def test_bad_range_is_one_line_exit_2():
    result = scan("-m", "10.0.0.0/8")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stdout == ""


# -- the outputs, used by the tools they are for -----------------------------------------


def _drivers_dump(conf_dir, section, driver):
    state = conf_dir / "state"
    state.mkdir(exist_ok=True)
    env = {**os.environ, "NUT_CONFPATH": str(conf_dir), "NUT_STATEPATH": str(state), "NUT_ALTPIDPATH": str(state)}
    return subprocess.run([f"/lib/nut/{driver}", "-a", section, "-u", "root", "-d", "1"], capture_output=True,
                          text=True, env=env, timeout=30)


def test_ups_conf_sections_start_with_nut_s_own_drivers(full_scan, tmp_path):
    if os.geteuid() != 0 or not os.path.exists("/lib/nut/snmp-ups"):
        pytest.skip("needs root and NUT's drivers")
    _, argv = full_scan
    conf = tmp_path / "ups.conf"
    result = scan(*argv, "--ups-conf", str(conf), "-q")
    assert result.returncode == 0, result.stderr
    text = conf.read_text()
    assert lab_bmc.ADMIN_PASSWORD not in text
    # ipmi-psu reads the password from the file the section names
    (tmp_path / "nut.conf").write_text("MODE=standalone\n")
    text = text.replace('password_file = "/etc/nut/', f'password_file = "{tmp_path}/')
    conf.write_text(text)
    sections = {}
    for block in text.split("\n["):
        if "]" in block and "driver = " in block:
            name = block.split("]", 1)[0].lstrip("[")
            sections[name] = block.split('driver = "', 1)[1].split('"', 1)[0]
            if sections[name] == "ipmi-psu":
                pw = block.split('password_file = "', 1)[1].split('"', 1)[0]
                Path(pw).write_text(lab_bmc.ADMIN_PASSWORD + "\n")
    drivers = {}
    for name, driver in sections.items():
        drivers.setdefault(driver, name)
    assert set(drivers) >= {"snmp-ups", "dummy-ups"}
    if os.path.exists("/lib/nut/ipmi-psu"):
        assert "ipmi-psu" in drivers
    for driver, name in drivers.items():
        dump = _drivers_dump(tmp_path, name, driver)
        assert dump.returncode == 0, f"{driver} [{name}]: {dump.stderr[-500:]}"
        assert "device.type:" in dump.stdout


def test_pcs_commands_apply_to_a_cib_file(full_scan, tmp_path):
    if not shutil.which("pcs") or not shutil.which("cibadmin"):
        pytest.skip("needs pcs and cibadmin")
    _, argv = full_scan
    result = scan(*argv, "--pcs", "-q", "--secrets-dir", "/etc/keys")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("pcs stonith create")]
    assert {line.split()[4] for line in lines} == {"fence_snmp_pdu", "fence_nut", "fence_ipmi_psu"}
    assert lab_bmc.ADMIN_PASSWORD not in result.stdout and "password=" not in result.stdout.replace("_script=", "")
    cib = tmp_path / "cib.xml"
    cib.write_text(subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, check=True).stdout)
    import shlex

    for line in lines:
        words = shlex.split(line)
        applied = subprocess.run(["pcs", "-f", str(cib), *words[1:]], capture_output=True, text=True, timeout=60)
        assert applied.returncode == 0, f"{line}: {applied.stderr}"
    config = subprocess.run(["pcs", "-f", str(cib), "stonith", "config"], capture_output=True, text=True)
    assert config.stdout.count("class=stonith") == len(lines)
    # the CIB with those devices is valid as Pacemaker reads it (schema, agents' metadata, options)
    verified = subprocess.run(["crm_verify", "--xml-file", str(cib), "-V"], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_units_of_a_daisy_chain(tmp_path):
    from infrapower import lab as lab_module

    topology = {"servers": {"s1": {"role": "test", "psus": {"psu1": "pdu3:1"}}},
                "pdus": {"pdu3": {"mapping": "eaton_epdu", "outlets": 4, "units": 2, "ups": "ups1", "switch_delay": 0.0,
                                  "unswitchable": ["2.3"]}},
                "upses": {"ups1": {}}}
    chained = lab_module.up(tmp_path / "lab", topology=topology, components=("pdus",))
    try:
        result = scan("-s", "127.0.0.1", "-S", "--snmp-port", str(chained.port("snmp:pdu3")), "--json", "-q")
        pcs = scan("-s", "127.0.0.1", "-S", "--snmp-port", str(chained.port("snmp:pdu3")), "--pcs", "-q")
        table = scan("-s", "127.0.0.1", "-S", "--snmp-port", str(chained.port("snmp:pdu3")), "-q")
    finally:
        lab_module.down(tmp_path / "lab")
    pdu, = json.loads(result.stdout)
    assert pdu["units"] == 2 and len(pdu["outlets"]) == 8 and pdu["model"].endswith("unit 1")
    assert [o["id"] for o in pdu["outlets"]][3:5] == ["1:4", "2:1"]
    # the PDU's own per-outlet flag: 2:3 is locked, the others switch
    assert [o["id"] for o in pdu["outlets"] if not o["switchable"]] == ["2:3"] and pdu["switchable"]
    assert "switchable but 1:" in table.stdout and "2:3 " in table.stdout and "(not switchable)" in table.stdout
    assert "'pcmk_host_map=s1:1\\:1'" in pcs.stdout


# -- a PDU that speaks SNMPv3 only ------------------------------------------------------


@pytest.fixture(scope="module")
def v3_only_pdu(lab, tmp_path_factory):
    """The lab's pdu2 records (eaton_epdu) served by a second snmpsim run
    with --v3-only: v1/v2c requests are dropped, whatever the community."""
    import snmpsim

    from infrapower.lab.core import free_port, lab_python

    user = lab_pdus.V3_USER
    records = Path(lab.path("snmp", "pdu2"))
    port = free_port("udp")
    argv = [lab_python(), "-c", lab_pdus._SNMPSIM_MAIN, f"--data-dir={records / 'data'}",
            f"--cache-dir={tmp_path_factory.mktemp('v3only-cache')}", f"--agent-udpv4-endpoint=127.0.0.1:{port}",
            f"--variation-module-options=pdu:profile={records / 'profile.json'}", "--logging-method=stderr",
            "--log-level=error", "--v3-only", f"--v3-user={user['user']}", f"--v3-auth-key={user['auth_key']}",
            f"--v3-auth-proto={user['auth_proto']}", f"--v3-priv-key={user['priv_key']}",
            f"--v3-priv-proto={user['priv_proto']}", f"--variation-modules-dir={lab_pdus.MODULES_DIR}",
            f"--variation-modules-dir={Path(snmpsim.__file__).parent / 'variation'}"]
    log = open(tmp_path_factory.mktemp("v3only-log") / "snmpsim.log", "wb")
    # as the lab spawns its own snmpsim (infrapower.lab.pdus.start): the rack's state and the PDU's fault files
    env = {**os.environ, "SNMPSIM_ALLOW_ROOT": "true", "INFRAPOWER_PDU_DIR": str(records),
           "INFRAPOWER_LAB_DIR": str(lab.dir), "PYTHONPATH": PACKAGE_ROOT}
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_a_v3_only_pdu_is_found_by_its_user_and_not_by_communities(v3_only_pdu, tmp_path):
    user = lab_pdus.V3_USER
    auth, priv = tmp_path / "auth", tmp_path / "priv"
    auth.write_text(user["auth_key"] + "\n")
    priv.write_text(user["priv_key"] + "\n")
    argv = ["-S", "-s", "127.0.0.1", "--snmp-port", str(v3_only_pdu), "-c", lab_pdus.READ_COMMUNITY,
            "-c", lab_pdus.WRITE_COMMUNITY, "-u", user["user"], "-w", user["auth_proto"], "-W", str(auth),
            "-x", user["priv_proto"], "-X", str(priv), "-t", "2", "--json", "-q"]
    deadline = time.monotonic() + 60  # snmpsim binds its port only after indexing the records

    while True:
        result = scan(*argv)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        found = json.loads(result.stdout)
        if found and found[0].get("outlets") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    pdu, = found
    assert (pdu["version"], pdu["sec_name"], pdu["mapping"], pdu["conf_mapping"]) == \
        ("3", user["user"], "eaton_epdu", "eaton_epdu")
    assert pdu["communities"] == [] and "community" not in pdu and len(pdu["outlets"]) == 8
    assert user["auth_key"] not in result.stdout + result.stderr and user["priv_key"] not in result.stdout
    conf = scan(*argv[:-2], "--format", "ups.conf", "-q")
    assert 'snmp_version = "v3"' in conf.stdout and 'secLevel = "authPriv"' in conf.stdout
    assert user["priv_key"] not in conf.stdout and "community" not in conf.stdout
    # the section's v3 settings, as NUT's snmp-ups hands them to net-snmp, read the PDU with net-snmp's snmpget
    # (snmp-ups itself started on it in 8 s alone, but its full v3 walk of the simulator overran 30 s under load)
    if shutil.which("snmpget"):
        settings = dict(line.strip().split(" = ", 1) for line in conf.stdout.splitlines()
                        if " = " in line and not line.strip().startswith("#"))
        settings = {key: value.strip('"') for key, value in settings.items()}
        # the passphrases from a snmp.conf, not argv
        (tmp_path / "snmp.conf").write_text(f"defAuthPassphrase {user['auth_key']}\ndefPrivPassphrase {user['priv_key']}\n")
        environment = {**os.environ, "SNMP_PERSISTENT_DIR": str(tmp_path), "SNMPCONFPATH": str(tmp_path)}
        got = subprocess.run(["snmpget", "-v3", "-u", settings["secName"], "-l", settings["secLevel"],
                              "-a", settings["authProtocol"], "-x", settings["privProtocol"],
                              "-t", "3", "-r", "2", "-O", "vq", settings["port"], ".1.3.6.1.2.1.1.2.0"],
                             capture_output=True, text=True, timeout=60, env=environment)
        assert got.returncode == 0 and "534" in got.stdout, got.stderr
    # communities alone: nothing there
    alone = scan("-S", "-s", "127.0.0.1", "--snmp-port", str(v3_only_pdu), "-c", lab_pdus.READ_COMMUNITY, "-t", "1",
                 "--json", "-q")
    assert json.loads(alone.stdout) == []
