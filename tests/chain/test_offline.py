"""The chain from files alone: grammar, validation with file:line, the
design's own single points of failure, what-if, views and exit codes."""

import subprocess
import sys
from xml.etree import ElementTree

import pytest

from infrapower.chain import analysis, assemble, live, model
from infrapower.chain.live import DOWN, RISK, LinkState
from infrapower.chain.upsconf import UpsConf

UPS_CONF = """\
# two UPSes, two PDUs
[ups1]
\tdriver = usbhid-ups
\tport = auto
\tparent = main
[ups2]
\tdriver = usbhid-ups
\tport = auto
\tparent = main
[pdu1]
\tdriver = snmp-ups
\tport = 10.0.0.5
\tparent = ups1
[pdu2]
\tdriver = snmp-ups
\tport = 10.0.0.6
\tparent = ups2:outlet1@localhost
"""

SERVERS = """\
upsd = localhost
[clc]
\tdesc = "cloud controller"
\tpsu.psu1 = pdu1:outlet1
\tpsu.psu2 = pdu2:1
[single]
\tpsu.psu1 = pdu1:2
[samepdu]
\tpsu.psu1 = pdu1:3
\tpsu.psu2 = pdu1:4
"""


def chain_of(ups_conf=UPS_CONF, servers=SERVERS):
    return assemble.build(UpsConf(ups_conf, "ups.conf"), UpsConf(servers, "servers.conf"))


def run_cli(tmp_path, *args, ups_conf=UPS_CONF, servers=SERVERS):
    (tmp_path / "ups.conf").write_text(ups_conf)
    (tmp_path / "servers.conf").write_text(servers)
    return subprocess.run(
        [sys.executable, "-m", "infrapower.cli.chain", "--config-dir", str(tmp_path), *args],
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("main", model.ParentRef(None)),
        ("MAIN", model.ParentRef(None)),
        ("pdu1", model.ParentRef("pdu1")),
        ("pdu1:outlet1", model.ParentRef("pdu1", "1")),
        ("pdu1:3", model.ParentRef("pdu1", "3")),
        ("pdu1:clc@localhost", model.ParentRef("pdu1", "clc", "localhost", 3493)),
        ("pdu1:2@nut.example.com:3494", model.ParentRef("pdu1", "2", "nut.example.com", 3494)),
        ("ups1@[::1]:3493", model.ParentRef("ups1", None, "::1", 3493)),
        ("pdu4:2:3", model.ParentRef("pdu4", "2:3")),  # outlet 3 of daisy-chained unit 2
        ("pdu4:2:3@nut.example.com:3494", model.ParentRef("pdu4", "2:3", "nut.example.com", 3494)),
    ],
)
def test_parent_grammar(text, expected):
    assert model.parse_parent(text) == expected


# upsd's variables of a daisy chain snmp-ups serves as one device.
CHAIN_VARIABLES = {
    "device.count": "2",
    "device.1.outlet.0.id": "0",
    **{f"device.{u}.outlet.{n}.status": "on" for u in (1, 2) for n in (1, 2, 3)},
    "device.1.outlet.3.desc": "web1",
    "device.2.outlet.2.desc": "db1",
    "device.2.outlet.3.desc": "web1",
}


@pytest.mark.parametrize(
    "variables, token, outlet, prefix, plug",
    [
        (CHAIN_VARIABLES, "2:3", (2, 3), "device.2.outlet.3", "2:3"),
        (CHAIN_VARIABLES, "3", (1, 3), "device.1.outlet.3", "1:3"),  # a plain number: unit 1
        (CHAIN_VARIABLES, "db1", (2, 2), "device.2.outlet.2", "2:2"),
        (CHAIN_VARIABLES, "2:web1", (2, 3), "device.2.outlet.3", "2:3"),
        (CHAIN_VARIABLES, "web1", None, None, None),  # on two units
        (CHAIN_VARIABLES, "3:1", None, None, None),  # no unit 3
        (CHAIN_VARIABLES, "2:4", None, None, None),
        (CHAIN_VARIABLES, "1:0", None, None, None),  # NUT's all-outlets pseudo-outlet
        ({"outlet.3.status": "on", "outlet.3.desc": "web1"}, "3", 3, "outlet.3", "3"),
        ({"outlet.3.status": "on", "outlet.3.desc": "web1"}, "web1", 3, "outlet.3", "3"),
        ({"outlet.3.status": "on"}, "1:3", 3, "outlet.3", "3"),  # no chain: unit 1 is the PDU
        ({"outlet.3.status": "on"}, "2:3", None, None, None),
    ],
)
def test_outlets_of_a_daisy_chain_upsd_serves(variables, token, outlet, prefix, plug):
    found = live.outlet_number(variables, token)
    assert found == outlet
    if outlet is not None:
        assert (live.outlet_prefix(found), live.outlet_plug(found)) == (prefix, plug)


@pytest.mark.parametrize("text", ["", ":1", "pdu 1", "pdu1:", "pdu1@", "pdu1@host:port", "pdu1:x@@", "ups1@[::1",
                                  "ups1@[::1]3493", "ups1@::1", "ups1@host:0", "ups1@host:65536", "ups1@a b"])
def test_parent_grammar_errors(text):
    with pytest.raises(ValueError):
        model.parse_parent(text)


def test_paths_and_the_designs_own_weak_spots():
    chain = chain_of()
    assert not chain.problems
    # `@localhost` names the local upsd: ups2:1 is ups2's outlet, not another server's device.
    assert chain.path("clc:psu2") == ["clc:psu2", "pdu2:1", "pdu2", "ups2:1", "ups2", "main"]
    lines = {a.server: a.line() for a in analysis.assess(chain)}
    assert lines["clc"] == "clc: redundant: 2 independent feeds"
    # upsd reads ups.conf on its own host: there `@localhost` is that
    # host, even when this tool reaches it by name.
    by_name = chain_of(servers=SERVERS.replace("upsd = localhost", "upsd = nut1.example.com"))
    assert not by_name.problems
    assert by_name.path("clc:psu2") == ["clc:psu2", "pdu2:1", "pdu2", "ups2:1", "ups2", "main"]
    assert lines["single"] == "single: DEGRADED: only feed is psu1 ← pdu1:2 ← ups1"
    assert lines["samepdu"] == "samepdu: DEGRADED: every feed passes through pdu1, ups1"


def test_the_specs_scenario_from_states():
    chain = chain_of()
    states = {"clc:psu1": LinkState(DOWN, "failed"), "ups2": LinkState(RISK, "OB LB", "on battery, low")}
    clc = analysis.assess(chain, states)[0]
    assert clc.status == analysis.DEGRADED
    assert clc.line() == "clc: DEGRADED: psu1 failed; only feed is psu2 ← pdu2:1 ← ups2:outlet1 ← ups2 (on battery, low)"
    assert clc.single_points == ["clc:psu2", "pdu2:1", "pdu2", "ups2:1", "ups2"]


def test_what_if_lists_who_loses_power():
    chain = chain_of()
    assessments, lost = analysis.what_if(chain, None, [chain.find("ups1")])
    assert lost == ["single", "samepdu"]
    assert analysis.exit_code(assessments) == analysis.EXIT_DEGRADED
    _, lost = analysis.what_if(chain, None, [chain.find("pdu1:outlet1"), chain.find("ups2")])
    assert lost == ["clc"]


@pytest.mark.parametrize(
    "ups_conf, servers, problem",
    [
        (UPS_CONF.replace("parent = ups1", "parent = ups9"), SERVERS,
         "ups.conf:13: [pdu1]: parent 'ups9' is no device of ups.conf (devices: ups1, ups2, pdu1, pdu2)"),
        (UPS_CONF.replace("parent = ups1", "parent = pdu2:4"),
         SERVERS.replace("pdu2:1", "pdu1:7"), None),
        (UPS_CONF.replace("\tparent = main\n[ups2]", "\tparent = pdu1:8\n[ups2]"), SERVERS,
         "ups.conf:5: a cycle in the power chain: ups1 -> pdu1:8 -> pdu1 -> ups1"),
        (UPS_CONF, SERVERS.replace("pdu1:2", "pdu1:two words"), "servers.conf:7: expected `key = value`"),
        (UPS_CONF, SERVERS.replace("pdu1:2", "pdu1:"), "servers.conf:7: [single] psu.psu1 = pdu1:: empty outlet after ':'"),
        (UPS_CONF, SERVERS.replace("psu.psu1 = pdu1:2", "psu1 = pdu1:2"),
         "servers.conf:7: [single]: unknown setting 'psu1' (PSUs are written psu.NAME = PARENT)"),
        (UPS_CONF, SERVERS + "[lonely]\n\tdesc = nothing\n", "servers.conf:11: [lonely] has no power supply"),
    ],
)
def test_problems_name_file_and_line(tmp_path, ups_conf, servers, problem):
    result = run_cli(tmp_path, ups_conf=ups_conf, servers=servers)
    if problem is None:  # a valid variation
        assert result.returncode in (0, 1), result.stderr
        return
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert problem in result.stderr, result.stderr
    assert all(line.startswith(str(tmp_path)) or line.startswith("infrapower chain: " + str(tmp_path))
               for line in result.stderr.splitlines()), result.stderr


def test_cli_views_exit_codes_and_svg(tmp_path):
    result = run_cli(tmp_path)
    assert result.returncode == 1, result.stderr  # `single` and `samepdu` are degraded by design
    # outlets as written: `pdu1:outlet1` stays so, as in the spec's `upsc -P`
    assert "clc (cloud controller)\n  psu1 -> pdu1:outlet1 -> ups1 -> main\n  psu2 -> pdu2:1 -> ups2:outlet1 -> main" \
        in result.stdout
    long = run_cli(tmp_path, "-l")
    assert "    -> pdu1  snmp-ups on upsd localhost:3493" in long.stdout and "@ " + str(tmp_path / "ups.conf") + ":13" in long.stdout

    healthy = SERVERS.split("[single]")[0]
    assert run_cli(tmp_path, servers=healthy).returncode == 0

    svg_file = tmp_path / "chain.svg"
    what_if = run_cli(tmp_path, "--fail", "ups2", "--svg", str(svg_file), servers=healthy)
    assert what_if.returncode == 1
    assert "if ups2 fails: no server loses power" in what_if.stdout
    assert "clc: DEGRADED: psu2's feed: ups2 failed (what-if); only feed is psu1 ← pdu1:outlet1 ← ups1" in what_if.stdout
    root = ElementTree.parse(svg_file).getroot()
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert {"clc", "clc:psu1", "pdu1:1", "pdu1", "ups1", "main"} <= set(titles)
    assert '#ffd6d6' in svg_file.read_text()  # the failed UPS drawn as down

    both = run_cli(tmp_path, "--fail", "ups2", "--fail", "pdu1", servers=healthy)
    assert both.returncode == 1 and "if ups2, pdu1 fail: losing power: clc" in both.stdout

    unknown = run_cli(tmp_path, "--fail", "ups7")
    assert unknown.returncode == 2 and unknown.stderr.startswith("infrapower chain: no link named 'ups7'")
    missing = subprocess.run([sys.executable, "-m", "infrapower.cli.chain", "--config-dir", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().endswith("cannot read: No such file or directory")


# A second NUT server: pdu2 moves to nut2, described by its own ups.conf copy.
NUT2_UPS_CONF = """\
[pdu2]
\tdriver = snmp-ups
\tport = 10.0.0.6
\tparent = ups2@nut1.example.com      # back on the first upsd
[pdu3]
\tdriver = snmp-ups
\tport = 10.0.0.7
\tparent = pdu2:8@localhost           # localhost in nut2's file is nut2
"""
TWO_UPSDS = """\
upsd = nut1.example.com
fence_nut_username = fencer
[@nut2.example.com:3493]
\tups_conf = nut2-ups.conf
\tfence_nut_username = fencer2
[clc]
\tpsu.psu1 = pdu1:1
\tpsu.psu2 = pdu2:1@nut2.example.com
[nc1]
\tpsu.psu1 = pdu1:2
\tpsu.psu2 = pdu3:outlet2@nut2.example.com:3493
"""


def test_another_upsd_described_by_its_own_ups_conf(tmp_path):
    (tmp_path / "nut2-ups.conf").write_text(NUT2_UPS_CONF)
    ups_conf = UPS_CONF.split("[pdu2]")[0]
    (tmp_path / "ups.conf").write_text(ups_conf)
    (tmp_path / "servers.conf").write_text(TWO_UPSDS)
    chain = assemble.load(tmp_path)
    assert not chain.problems, chain.problems
    nut2 = "nut2.example.com:3493"
    assert chain.path("clc:psu2") == ["clc:psu2", f"pdu2:1@{nut2}", f"pdu2@{nut2}", "ups2", "main"]
    assert chain.path("nc1:psu2") == ["nc1:psu2", f"pdu3:2@{nut2}", f"pdu3@{nut2}", f"pdu2:8@{nut2}", f"pdu2@{nut2}",
                                      "ups2", "main"]
    assert chain.links[f"pdu3@{nut2}"].origin == model.Origin(str(tmp_path / "nut2-ups.conf"), 8)  # its parent line
    assert chain.find("pdu2@nut2.example.com") == f"pdu2@{nut2}"
    _, lost = analysis.what_if(chain, None, [chain.find("ups2")])
    assert lost == []
    _, lost = analysis.what_if(chain, None, [chain.find("ups1"), chain.find(f"pdu2:8@{nut2}")])
    assert lost == ["nc1"]  # clc keeps pdu2:1; both of nc1's feeds are cut

    result = run_cli(tmp_path, "-l", ups_conf=ups_conf, servers=TWO_UPSDS)
    assert result.returncode == 0, result.stderr
    assert f"    -> pdu2@{nut2}  snmp-ups on upsd {nut2}  SNMP 10.0.0.6  @ {tmp_path / 'nut2-ups.conf'}:4" in result.stdout


@pytest.mark.parametrize(
    "nut2, servers, problem",
    [
        (NUT2_UPS_CONF.replace("pdu2:8@localhost", "ups9@localhost"), TWO_UPSDS,
         "nut2-ups.conf:8: [pdu3]: parent 'ups9' is no device of {dir}/nut2-ups.conf (upsd at nut2.example.com:3493) "
         "(devices: pdu2, pdu3)"),
        (NUT2_UPS_CONF, TWO_UPSDS.replace("pdu2:1@nut2", "pdu7:1@nut2"),
         "servers.conf:8: [clc] psu.psu2: parent 'pdu7' is no device of {dir}/nut2-ups.conf"),
        (NUT2_UPS_CONF, TWO_UPSDS.replace("nut2-ups.conf", "missing.conf"),
         "servers.conf:4: [@nut2.example.com:3493] ups_conf: {dir}/missing.conf:0: cannot read"),
        (NUT2_UPS_CONF, TWO_UPSDS.replace("fence_nut_username = fencer2", "community = x"),
         "servers.conf:5: [@nut2.example.com:3493]: unknown setting 'community' for another upsd"),
        (NUT2_UPS_CONF, TWO_UPSDS.replace("[@nut2.example.com:3493]", "[@nut2.example.com:port]"),
         "servers.conf:3: [@nut2.example.com:port]: port 'port' is not a number"),
        (NUT2_UPS_CONF, TWO_UPSDS.replace("[@nut2.example.com:3493]", "[@nut1.example.com]"),
         "servers.conf:3: [@nut1.example.com]: upsd nut1.example.com:3493 is described twice"),
    ],
)
def test_another_upsds_problems_name_file_and_line(tmp_path, nut2, servers, problem):
    (tmp_path / "nut2-ups.conf").write_text(nut2)
    result = run_cli(tmp_path, ups_conf=UPS_CONF.split("[pdu2]")[0], servers=servers)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert problem.format(dir=tmp_path) in result.stderr, result.stderr


def test_an_unreadable_snmp_ups_port_is_a_reason_not_a_crash():
    from infrapower.chain.live import LiveView
    from infrapower.chain.plan import _Switchability

    chain = chain_of(ups_conf=UPS_CONF.replace("port = 10.0.0.5", "port = 10.0.0.5:snmp"))
    view = LiveView(outlet_numbers={"pdu1:1": 1})
    options, why = _Switchability(chain, view, 1.0).snmp_options(chain.links["pdu1:1"])
    assert options is None and why == "pdu1: port: port 'snmp' is not a number from 1 to 65535"
