"""The spec's ups.conf as written: power supplies as NUT devices (driver
ipmi-psu) with `parent =`, no servers file. Views in the spec's `upsc -P`
/ `upsc -Pl` shape, servers grouped from their PSU devices, SPOFs, what-if,
validation with file:line, a configuration mixing servers.conf and PSU
devices, and --live / --plan against a small scripted upsd (no lab)."""

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from infrapower.chain import analysis, assemble
from infrapower.chain.live import DOWN, OK, LinkState, psu_state
from infrapower.chain.psudevices import _common_prefix
from infrapower.chain.upsconf import UpsConf
from infrapower.nut.words import quote

SPEC = Path(__file__).parent / "fixtures" / "spec-ups.conf"
SPEC_TEXT = SPEC.read_text()

# The spec's own example, one server: psu1 on pdu1's outlet1, on ups1.
SPEC_ONE = """\
[psu1]
\tdriver = ipmi-psu
\tport = bmc-host
\tparent = pdu1:outlet1@localhost
[pdu1]
\tdriver = snmp-ups
\tport = 10.0.0.5
\tparent = ups1@localhost
[ups1]
\tdriver = usbhid-ups
\tport = auto
\tparent = main
"""

SPEC_TREE = """\
clc
  clc-psu1 -> pdu1:outlet1 -> ups1 -> main
  clc-psu2 -> pdu2:outlet1 -> ups2 -> main
nc1
  nc1-psu1 -> pdu1:outlet2 -> ups1 -> main
  nc1-psu2 -> pdu2:outlet2 -> ups2 -> main
nc2
  nc2-psu1 -> pdu1:outlet3 -> ups1 -> main
  nc2-psu2 -> pdu2:outlet3 -> ups2 -> main

clc: redundant: 2 independent feeds
nc1: redundant: 2 independent feeds
nc2: redundant: 2 independent feeds
"""


def chain_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "infrapower.cli.chain", *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


def ups_conf_cli(tmp_path, text, *args):
    """`infrapower chain --ups-conf FILE` with no servers file anywhere."""
    path = tmp_path / "ups.conf"
    path.write_text(text)
    return chain_cli("--config-dir", str(tmp_path), "--ups-conf", str(path), *args), path


def test_the_specs_ups_conf_alone_as_upsc_P(tmp_path):
    result = chain_cli("--ups-conf", str(SPEC), "--config-dir", str(tmp_path))  # no servers.conf there
    assert result.returncode == 0, result.stderr
    assert result.stdout == SPEC_TREE
    assert result.stderr == ""
    # The spec's own single-PSU example reads as its `upsc -P`; with no
    # common name prefix, the server is named from its BMC.
    one, _ = ups_conf_cli(tmp_path, SPEC_ONE)
    assert one.returncode == 1, one.stderr  # one PSU: degraded by design
    assert one.stdout.splitlines()[:2] == ["bmc-host", "  psu1 -> pdu1:outlet1 -> ups1 -> main"]
    assert "bmc-host: DEGRADED: only feed is psu1 ← pdu1:outlet1 ← ups1" in one.stdout


def test_the_long_view_as_upsc_Pl(tmp_path):
    result = chain_cli("--ups-conf", str(SPEC), "--config-dir", str(tmp_path), "-l")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:6] == [
        "clc  (named from its PSU devices, BMC bmc-clc:623)",
        f'  clc-psu1  ipmi-psu on upsd localhost:3493  BMC bmc-clc  PSU 1  "cloud controller, PSU 1"  '
        f"power supply of clc  @ {SPEC}:13",
        f"    -> pdu1:outlet1  outlet 1 of pdu1  @ {SPEC}:13",
        f'    -> pdu1  snmp-ups on upsd localhost:3493  SNMP 10.0.0.5  "rack PDU A"  @ {SPEC}:49',
        f"    -> ups1  usbhid-ups on upsd localhost:3493  @ {SPEC}:60",
        "    -> main",
    ]
    assert f"  nc2-psu2  ipmi-psu on upsd localhost:3493  BMC bmc-nc2  PSU 2  power supply of nc2  @ {SPEC}:42" in lines


def test_servers_grouped_from_their_psu_devices():
    chain = assemble.build(UpsConf(SPEC_TEXT, "ups.conf"))
    assert not chain.problems, chain.problems
    # `bmc-clc` and `bmc-clc:623` are one BMC
    assert {name: s.psus for name, s in chain.servers.items()} == {
        "clc": ["clc-psu1", "clc-psu2"], "nc1": ["nc1-psu1", "nc1-psu2"], "nc2": ["nc2-psu1", "nc2-psu2"],
    }
    assert chain.path("clc-psu1") == ["clc-psu1", "pdu1:1", "pdu1", "ups1", "main"]
    assert chain.links["clc-psu1"].server == "clc"

    # `server =` names it, whatever the section names; it also groups
    # devices of no PSU driver.
    named = SPEC_TEXT.replace("\tpsu = 1\n\tpollinterval", "\tserver = controller\n\tpsu = 1\n\tpollinterval")
    named = named.replace("[nc2-psu1]\n\tdriver = ipmi-psu\n\tport = bmc-nc2",
                          "[nc2-psu1]\n\tdriver = dummy-ups\n\tport = nc2.dev\n\tserver = nc2")
    named = named.replace("[nc2-psu2]\n\tdriver = ipmi-psu\n\tport = bmc-nc2",
                          "[nc2-psu2]\n\tdriver = dummy-ups\n\tport = nc2b.dev\n\tserver = nc2")
    chain = assemble.build(UpsConf(named, "ups.conf"))
    assert not chain.problems, chain.problems
    assert list(chain.servers) == ["controller", "nc1", "nc2"]
    assert chain.servers["controller"].psus == ["clc-psu1", "clc-psu2"]  # clc-psu2: same BMC
    assert chain.servers["nc2"].psus == ["nc2-psu1", "nc2-psu2"]

    # NUT's in-band nut-ipmipsu: the PSUs of the machine its upsd runs on
    in_band = SPEC_ONE.replace("[psu1]\n\tdriver = ipmi-psu\n\tport = bmc-host", "[web-psu1]\n\tdriver = nut-ipmipsu\n\tport = id1")
    in_band += "[web-psu2]\n\tdriver = nut-ipmipsu\n\tport = id2\n\tparent = ups1\n"
    chain = assemble.build(UpsConf(in_band, "ups.conf"))
    assert not chain.problems, chain.problems
    assert chain.servers["web"].psus == ["web-psu1", "web-psu2"]


@pytest.mark.parametrize("names, prefix", [
    (["clc-psu1", "clc-psu2"], "clc"),
    (["nc1-psu1", "nc1-psu2"], "nc1"),
    (["rack1.web_a", "rack1.web_b"], "rack1.web"),
    (["rack1.a-psu1", "rack1.b-psu1"], "rack1"),
    (["rack1.web-psu1", "rack1.web-psu2"], "rack1.web"),
    (["clc-psu1"], "clc"),
    (["psu1", "psu2"], ""),
    (["a-psu1", "b-psu1"], ""),
])
def test_server_names_from_common_prefixes(names, prefix):
    assert _common_prefix(names) == prefix


def test_single_points_and_what_if(tmp_path):
    # nc2's second PSU moved onto pdu1: both its feeds pass through pdu1
    text = SPEC_TEXT.replace("pdu2:outlet3@localhost", "pdu1:outlet4@localhost")
    result, _ = ups_conf_cli(tmp_path, text)
    assert result.returncode == 1
    assert "  nc2-psu2 -> pdu1:outlet4 -> ups1 -> main" in result.stdout
    assert "nc2: DEGRADED: every feed passes through pdu1, ups1" in result.stdout
    assert "clc: redundant: 2 independent feeds" in result.stdout

    what_if = chain_cli("--ups-conf", str(SPEC), "--config-dir", str(tmp_path), "--fail", "ups1", "--fail", "pdu2:outlet2")
    assert what_if.returncode == 1
    assert "  nc1-psu2 -> pdu2:outlet2 [failed] -> ups2 -> main" in what_if.stdout
    assert "clc: DEGRADED: clc-psu1's feed: ups1 failed (what-if); only feed is clc-psu2 ← pdu2:outlet1 ← ups2" \
        in what_if.stdout
    assert "nc1: DOWN: no power" in what_if.stdout
    assert what_if.stdout.rstrip().endswith("if ups1, pdu2:outlet2 fail: losing power: nc1")

    psu = chain_cli("--ups-conf", str(SPEC), "--config-dir", str(tmp_path), "--fail", "clc-psu1")
    assert psu.returncode == 1
    assert "clc: DEGRADED: clc-psu1 failed (what-if); only feed is clc-psu2 ← pdu2:outlet1 ← ups2" in psu.stdout
    assert "if clc-psu1 fails: no server loses power" in psu.stdout


def _problem_cases():
    spec = SPEC_TEXT
    return [
        (spec.replace("\tparent = pdu1:outlet2@localhost\n", ""),
         "ups.conf:22: [nc1-psu1]: a power supply needs parent = what feeds it"),
        (spec.replace("parent = ups1@localhost", "parent = clc-psu1"),
         "ups.conf:49: [pdu1]: parent 'clc-psu1' is a power supply: it feeds its server, nothing else"),
        (spec.replace("port = bmc-nc1\n\tpsu = 2", "port = bmc nc1\n\tpsu = 2"), "ups.conf:29: expected `key = value`"),
        (spec.replace("port = bmc-nc1\n\tpsu = 2", "port = bmc-nc1:ipmi\n\tpsu = 2"),
         "ups.conf:29: [nc1-psu2] port: port 'ipmi' is not a number from 1 to 65535 (its BMC: HOST[:PORT])"),
        (spec.replace("\tport = bmc-nc1\n\tpsu = 2\n", "\tpsu = 2\n"),
         "ups.conf:27: [nc1-psu2]: an ipmi-psu device needs port = its BMC (HOST[:PORT]), or server = NAME"),
        (spec.replace("port = bmc-nc1\n\tpsu = 1", "port = bmc-nc1\n\tserver = a\n\tpsu = 1")
             .replace("port = bmc-nc1\n\tpsu = 2", "port = bmc-nc1\n\tserver = b\n\tpsu = 2"),
         "ups.conf:31: [nc1-psu2] server = b, but [nc1-psu1] on the same BMC says server = a: "
         "the PSUs of one BMC are one server"),
        (spec.replace("port = bmc-nc1\n\tpsu = 1", "port = bmc-nc1\n\tserver = pdu1\n\tpsu = 1"),
         "ups.conf:22: [nc1-psu1]: its server 'pdu1' (server = pdu1) shares its name with a link of the chain"),
        (spec.replace("port = bmc-nc1\n\tpsu = 1", "port = bmc-nc1\n\tserver = \"two words\"\n\tpsu = 1"),
         "ups.conf:25: [nc1-psu1] server = two words: not a server name"),
        (spec.replace("port = bmc-nc1\n\tpsu = 2", "port = bmc-nc1b\n\tpsu = 2"),
         "ups.conf:27: [nc1-psu2]: its server 'nc1' (named from its PSU devices, BMC bmc-nc1b:623) is also the server "
         "at {dir}/ups.conf:22 (named from its PSU devices, BMC bmc-nc1:623): one BMC per server, or set server = NAME"),
        (spec.replace("parent = pdu2:outlet3@localhost", "parent = pdu9:outlet3@localhost"),
         "ups.conf:42: [nc2-psu2]: parent 'pdu9' is no device of ups.conf"),
        (spec.replace("parent = pdu2:outlet3@localhost", "parent = pdu2:@localhost"),
         "ups.conf:42: [nc2-psu2] parent = pdu2:@localhost: empty outlet after ':'"),
    ]


@pytest.mark.parametrize("text, problem", _problem_cases())
def test_problems_name_file_and_line(tmp_path, text, problem):
    result, path = ups_conf_cli(tmp_path, text)
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert f"{tmp_path}/{problem.format(dir=tmp_path)}" in result.stderr, result.stderr
    assert all(line.startswith((str(tmp_path), f"infrapower chain: {tmp_path}")) for line in result.stderr.splitlines())


def test_servers_files_missing_or_not(tmp_path):
    # A servers file named explicitly must exist, even when ups.conf would do.
    missing = chain_cli("--ups-conf", str(SPEC), "--servers", str(tmp_path / "nope.conf"))
    assert missing.returncode == 2
    assert missing.stderr == f"infrapower chain: {tmp_path}/nope.conf:0: cannot read: No such file or directory\n"
    # A ups.conf describing no server still needs one, and says so in one line.
    plain = "\n".join(line for line in SPEC_TEXT.split("[pdu1]", 1)[1:])
    result, path = ups_conf_cli(tmp_path, "[pdu1]" + plain)
    assert result.returncode == 2
    assert result.stderr == (f"infrapower chain: {tmp_path}/servers.conf:0: cannot read: No such file or directory "
                             f"(and {path} describes no server: no power supply device, driver = ipmi-psu or server = NAME)\n")


# servers.conf keeps clc; ups.conf's PSU devices describe nc1 and nc2.
MIXED_SERVERS = """\
fence_nut_username = fencer
fence_nut_password_script = /usr/local/sbin/nut-fencer-pw
[clc]
\tdesc = "cloud controller"
\tpsu.psu1 = pdu1:outlet1
\tpsu.psu2 = pdu2:1
"""


def _mixed_ups_conf():
    conf = UpsConf(SPEC_TEXT, "ups.conf")
    conf.remove("clc-psu1")
    conf.remove("clc-psu2")
    return conf.text()


def test_servers_conf_and_psu_devices_mixed(tmp_path):
    (tmp_path / "ups.conf").write_text(_mixed_ups_conf())
    (tmp_path / "servers.conf").write_text(MIXED_SERVERS)
    chain = assemble.load(tmp_path)
    assert not chain.problems, chain.problems
    assert list(chain.servers) == ["clc", "nc1", "nc2"]
    assert chain.path("clc:psu1") == ["clc:psu1", "pdu1:1", "pdu1", "ups1", "main"]
    assert chain.path("nc1-psu1") == ["nc1-psu1", "pdu1:2", "pdu1", "ups1", "main"]
    _, lost = analysis.what_if(chain, None, [chain.find("pdu1"), chain.find("nc2-psu2")])
    assert lost == ["nc2"]

    result = chain_cli("--config-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "clc (cloud controller)\n  psu1 -> pdu1:outlet1 -> ups1 -> main\n  psu2 -> pdu2:1 -> ups2 -> main\n"
        "nc1\n  nc1-psu1 -> pdu1:outlet2 -> ups1 -> main\n"
    )
    # The same server described twice is refused, at the PSU device.
    (tmp_path / "ups.conf").write_text(SPEC_TEXT)
    twice = chain_cli("--config-dir", str(tmp_path))
    assert twice.returncode == 2
    assert (f"{tmp_path}/ups.conf:5: [clc-psu1]: its server 'clc' is also a server of {tmp_path}/servers.conf:3: "
            "describe it in one place") in twice.stderr


# -- live and plan, against a scripted upsd ------------------------------------


class ScriptedUpsd:
    """Just enough of upsd for the chain: LIST UPS/VAR/CMD/RW, GET VAR;
    ERR UNKNOWN-UPS for a device it does not serve."""

    def __init__(self, devices):
        self.devices = devices  # name -> ({variable: value}, [commands])
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _answer(self, words):
        if words[:2] == ["LIST", "UPS"]:
            return ["BEGIN LIST UPS", *(f'UPS {name} "x"' for name in self.devices), "END LIST UPS"]
        if len(words) >= 3 and words[2] not in self.devices:
            return ["ERR UNKNOWN-UPS"]
        if words[:2] in (["LIST", "VAR"], ["LIST", "CMD"], ["LIST", "RW"]):
            variables, commands = self.devices[words[2]]
            head = " ".join(words[:3])
            if words[1] == "VAR":
                rows = [f"VAR {words[2]} {name} {quote(value)}" for name, value in variables.items()]
            elif words[1] == "CMD":
                rows = [f"CMD {words[2]} {command}" for command in commands]
            else:
                rows = []
            return [f"BEGIN {head}", *rows, f"END {head}"]
        if words[:2] == ["GET", "VAR"]:
            value = self.devices[words[2]][0].get(words[3])
            return [f"VAR {words[2]} {words[3]} {quote(value)}"] if value is not None else ["ERR VAR-NOT-SUPPORTED"]
        return ["ERR UNKNOWN-COMMAND"]

    def _serve(self, client):
        with client, client.makefile("rwb") as stream:
            for line in stream:
                words = line.decode().split()
                if words == ["LOGOUT"]:
                    return
                stream.write("".join(reply + "\n" for reply in self._answer(words)).encode())
                stream.flush()

    def close(self):
        self.server.close()


def _psu(status, alarm="", chassis="on"):
    """A PSU device as ipmi-psu publishes it (infrapower.nutdriver.ipmi_psu)."""
    variables = {"device.type": "psu", "driver.name": "ipmi-psu", "ups.status": status, "chassis.power": chassis}
    if alarm:
        variables["ups.alarm"] = alarm
    return variables, ["load.cycle", "load.off", "load.on", "shutdown.reboot"]


def _pdu(outlets, commands):
    variables = {"device.type": "pdu", "driver.name": "snmp-ups", "outlet.count": str(len(outlets)), "input.voltage": "230"}
    for number, state in enumerate(outlets, start=1):
        variables[f"outlet.{number}.status"] = state
    cmds = [f"outlet.{n}.load.{how}" for n in range(1, len(outlets) + 1) for how in ("on", "off")] if commands else []
    return variables, cmds


def _rack(**changes):
    devices = {
        "clc-psu1": _psu("OL"), "clc-psu2": _psu("OL"), "nc1-psu1": _psu("OL"), "nc1-psu2": _psu("OL"),
        "nc2-psu1": _psu("OL"), "nc2-psu2": _psu("OL"),
        "pdu1": _pdu(["on"] * 8, commands=False),  # APC-like: switched over SNMP only
        "pdu2": _pdu(["on"] * 8, commands=True),  # Eaton-like: NUT outlet commands
        "ups1": ({"ups.status": "OL"}, []), "ups2": ({"ups.status": "OL"}, []),
    }
    devices.update(changes)
    return devices


@pytest.fixture
def upsd():
    servers = []

    def start(devices):
        servers.append(ScriptedUpsd(devices))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_psu_states_as_the_driver_publishes_them():
    assert psu_state("OL").level == OK
    off = psu_state("OFF")  # the server is off; the supply is healthy and its feed counts
    assert off.level == OK and off.describe() == "healthy, its server off"
    for alarm, text in [("PSU failed", "failed"), ("PSU absent", "absent"), ("PSU input lost", "no input")]:
        assert psu_state("ALARM", alarm) == LinkState(DOWN, text)
        assert psu_state("OFF ALARM", alarm).level == DOWN
    assert psu_state("ALARM", "PSU state unknown").level == "unknown"
    assert psu_state("OL ALARM", "overheat").describe() == "failed (overheat)"
    assert psu_state("ALARM").describe() == "failed"
    assert psu_state("").level == "unknown"


def test_live_reads_psu_devices_through_upsd(tmp_path, upsd):
    peer = upsd(_rack(**{
        "clc-psu1": _psu("ALARM", "PSU failed"),
        "nc1-psu1": _psu("OFF", chassis="off"), "nc1-psu2": _psu("OFF", chassis="off"),
        "nc2-psu2": _psu("ALARM", "PSU input lost"),
        "ups2": ({"ups.status": "OB DISCHRG LB"}, []),
    }))
    result = chain_cli("--ups-conf", str(SPEC), "--config-dir", str(tmp_path), "--upsd", f"127.0.0.1:{peer.port}", "--live")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:6] == [
        "clc [power on]",
        "  clc-psu1 [failed] -> pdu1:outlet1 [on] -> ups1 [OL] -> main",
        "  clc-psu2 [OL] -> pdu2:outlet1 [on] -> ups2 [OB DISCHRG LB] -> main",
        "nc1 [power off]",
        "  nc1-psu1 [OFF] -> pdu1:outlet2 [on] -> ups1 [OL] -> main",
        "  nc1-psu2 [OFF] -> pdu2:outlet2 [on] -> ups2 [OB DISCHRG LB] -> main",
    ], lines
    assert "clc: DEGRADED: clc-psu1 failed; only feed is clc-psu2 ← pdu2:outlet1 ← ups2 (on battery, low)" in lines
    assert "nc1: DEGRADED: nc1-psu2's feed: ups2 on battery, low; only healthy feed is nc1-psu1 ← pdu1:outlet2 ← ups1" \
        in lines
    assert "nc2: DEGRADED: nc2-psu2 no input; only feed is nc2-psu1 ← pdu1:outlet3 ← ups1" in lines

    # A PSU device upsd does not serve: at its line.
    devices = _rack()
    del devices["nc2-psu2"]
    missing = upsd(devices)
    result = chain_cli("--ups-conf", str(SPEC), "--config-dir", str(tmp_path), "--upsd", f"127.0.0.1:{missing.port}", "--live")
    assert result.returncode == 2
    assert f"{SPEC}:42: upsd at 127.0.0.1:{missing.port} serves no device 'nc2-psu2'" in result.stderr


def test_plan_cuts_the_feeds_and_mentions_the_psu_device(tmp_path, upsd):
    peer = upsd(_rack())
    (tmp_path / "servers.conf").write_text(MIXED_SERVERS.split("[clc]")[0])  # fencing user only: no servers
    result = chain_cli("--ups-conf", str(SPEC), "--config-dir", str(tmp_path), "--upsd", f"127.0.0.1:{peer.port}", "--plan")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("clc: off: pdu1:outlet1 (clc-psu1, fence_snmp_pdu), pdu2:outlet1 (clc-psu2, fence_nut); "
                        "a pcs stonith level of chain-clc-pdu1-1, chain-clc-nut")
    assert lines[1] == ("  clc: fence_nut plug=clc-psu1 or plug=clc-psu2 (its PSU device) would switch its chassis "
                        "through the BMC, but leave its feeds on: not planned")
    assert ("pcs stonith create chain-clc-pdu1-1 fence_snmp_pdu ip=10.0.0.5 ipport=161 community=private "
            "snmp_version=1 plug=1 pcmk_host_list=clc") in lines
    assert (f"pcs stonith create chain-clc-nut fence_nut ip=127.0.0.1 ipport={peer.port} username=fencer "
            "password_script=/usr/local/sbin/nut-fencer-pw plug=pdu2:1 pcmk_host_list=clc") in lines
    assert "pcs stonith level add 1 nc2 chain-nc2-pdu1-3 chain-nc2-nut" in lines
    assert not any("plug=clc-psu" in line for line in lines if line.startswith("pcs"))

    # No switchable outlet on a feed: refused, never the PSU device alone.
    peer = upsd(_rack(pdu2=_pdu(["on"] * 8, commands=False)))
    text = SPEC_TEXT.replace("parent = pdu2:outlet1@localhost", "parent = ups2@localhost")
    (tmp_path / "ups.conf").write_text(text)
    result = chain_cli("--config-dir", str(tmp_path), "--upsd", f"127.0.0.1:{peer.port}", "--plan")
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith("clc: REFUSED: clc-psu2's feed (clc-psu2 -> ups2 -> main) has no switchable link: "
                               "cutting ups2 would also cut nc1, nc2")
    assert lines[1].startswith("  clc: fence_nut plug=clc-psu1 or plug=clc-psu2 (its PSU device)")
    assert not any("pcmk_host_list=clc" in line for line in lines)


# -- on the lab, once the ipmi-psu driver is there ------------------------------

NUT_DRIVER = Path("/lib/nut/ipmi-psu")


def _wait_for(config_dir, link_id, text, timeout=15.0):
    """upsd shows a PSU's state at the driver's next poll."""
    import time

    from infrapower.chain import live

    chain = assemble.load(config_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = live.read(chain).states.get(link_id)
        if state is not None and state.text == text:
            return
        time.sleep(0.2)
    raise AssertionError(f"{link_id} never showed {text!r}")


def test_live_on_the_lab_through_ipmi_psu(request, tmp_path):
    # Decided before any lab starts: no driver, no lab.
    if not NUT_DRIVER.exists():
        pytest.skip(f"the ipmi-psu driver is not installed ({NUT_DRIVER})")
    from infrapower.chain import lab as chain_lab
    from infrapower.lab import bmc

    rack = request.getfixturevalue("rack")
    chain_dir = chain_lab.write_config(rack, tmp_path, psu_devices=True)
    chain = assemble.load(chain_dir)
    psu_servers = [name for name, server in chain.servers.items() if server.how]
    if "clc" not in psu_servers:
        pytest.skip("the lab serves no ipmi-psu devices for clc yet")
    assert not chain.problems, chain.problems

    healthy = chain_cli("--config-dir", str(chain_dir), "--live")
    assert healthy.returncode == 0, healthy.stderr
    assert "clc [power on]" in healthy.stdout.splitlines()
    psu1, psu2 = chain.servers["clc"].psus
    label = chain.links[psu1].label
    assert f"  {label} [OL] -> pdu1:1 [on] -> ups1 [OL] -> main" in healthy.stdout
    assert "clc: redundant: 2 independent feeds" in healthy.stdout

    bmc.set_psu_fault(rack, "clc", "psu1", "failed")
    _wait_for(chain_dir, psu1, "failed")
    one = chain_cli("--config-dir", str(chain_dir), "--live")
    assert one.returncode == 1
    assert f"clc: DEGRADED: {label} failed; only feed is {chain.links[psu2].label} ← pdu2:1 ← ups2" in one.stdout
