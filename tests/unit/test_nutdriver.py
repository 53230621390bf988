"""The pure parts of the Python NUT drivers: the driver-socket protocol's
lines (what dstate.c sends), request parsing, ups.conf reading, ipmi-psu's
settings, PSU selection and status flags.  No upsd, no BMC."""

import pytest

from infrapower.errors import ConfigError
from infrapower.ipmi.psu import PowerSupply
from infrapower.nutdriver import dstate
from infrapower.nutdriver.ipmi_psu import parse_config, select_psu, split_port, status_flags
from infrapower.nutdriver.program import DriverExit, Options, read_ups_conf


def test_dump_lines_stale_and_fresh():
    fresh = dstate.Published({"ups.status": "OL", "device.type": "psu"}, {"load.off"}, {}, False)
    assert fresh.dump_lines() == [
        'SETINFO device.type "psu"\n', 'SETINFO ups.status "OL"\n', "ADDCMD load.off\n", "DATAOK\n", "DUMPDONE\n"]
    stale = dstate.Published({"ups.status": "OL"}, set(), {}, True)
    assert stale.dump_lines() == ["DATASTALE\n", 'SETINFO ups.status "OL"\n', "DUMPDONE\n"]


def test_change_lines_send_only_what_changed():
    old = dstate.Published({"a": "1", "b": "2"}, {"load.on"}, {}, False)
    new = dstate.Published({"a": "1", "c": 'say "hi"'}, {"load.off"}, {}, True)
    assert old.change_lines(new) == [
        "DATASTALE\n", 'SETINFO c "say \\"hi\\""\n', "DELINFO b\n", "ADDCMD load.off\n", "DELCMD load.on\n"]
    assert new.change_lines(old)[-1] == "DATAOK\n"
    assert old.change_lines(old) == []


def test_writable_variables_announced_and_withdrawn():
    plain = dstate.Published({"outlet.1.status": "on"})
    writable = dstate.Published({"outlet.1.status": "on"}, rw={"outlet.1.status": ("on", "off")})
    assert plain.change_lines(writable) == [
        "SETFLAGS outlet.1.status RW STRING\n", f"SETAUX outlet.1.status {dstate.STRING_AUX}\n",
        'ADDENUM outlet.1.status "on"\n', 'ADDENUM outlet.1.status "off"\n']
    assert writable.change_lines(plain) == ["DELINFO outlet.1.status\n", 'SETINFO outlet.1.status "on"\n']


@pytest.mark.parametrize("words, expected", [
    (["INSTCMD", "load.off"], ("INSTCMD", ["load.off"], None)),
    (["INSTCMD", "load.off", "TRACKING", "id-1"], ("INSTCMD", ["load.off"], "id-1")),
    (["INSTCMD", "load.off", "10", "TRACKING", "id-2"], ("INSTCMD", ["load.off", "10"], "id-2")),
    (["SET", "ups.id", "x y", "TRACKING", "id-3"], ("SET", ["ups.id", "x y"], "id-3")),
    (["dumpall"], ("DUMPALL", [], None)),
])
def test_parse_request(words, expected):
    request = dstate.parse_request(words)
    assert (request.verb, request.args, request.tracking) == expected
    assert dstate.parse_request([]) is None


def test_read_ups_conf_globals_sections_quotes(tmp_path):
    path = tmp_path / "ups.conf"
    path.write_text('pollinterval = 5\nmaxretry=3\n\n[clc-psu1]\n\tdriver = ipmi-psu\n'
                    '\tpassword = "pass word # not a comment" # a comment\n\tnolock\n[other]\n\tport = x\n')
    globals_, section = read_ups_conf(path, "clc-psu1")
    assert globals_ == {"pollinterval": "5", "maxretry": "3"}
    assert section == {"driver": "ipmi-psu", "password": "pass word # not a comment", "nolock": None}
    assert read_ups_conf(path, "missing")[1] is None
    path.write_text('[a]\n\tport = "open\n')
    with pytest.raises(ConfigError, match="unterminated quote"):
        read_ups_conf(path, "a")


def test_driver_options_as_upsdrvctl_passes_them():
    options = Options(["-DD", "-a", "clc-psu1", "-u", "root", "-x", "psu=2", "-x", "nolock"])
    assert (options.section, options.user, options.debug, options.background) == ("clc-psu1", "root", 2, False)
    assert options.overrides == {"psu": "2", "nolock": None}
    assert Options(["-a", "x"]).background is True
    assert Options(["-a", "x", "-B", "-D"]).background is True
    with pytest.raises(DriverExit):
        Options(["-a", "x", "extra"])
    with pytest.raises(DriverExit):
        Options(["-Z"])


@pytest.mark.parametrize("port, expected", [
    ("bmc", ("bmc", 623)), ("bmc:6230", ("bmc", 6230)), ("[fe80::1]:700", ("fe80::1", 700)), ("fe80::1", ("fe80::1", 623)),
])
def test_split_port(port, expected):
    assert split_port(port) == expected


@pytest.mark.parametrize("port", ["", ":623", "bmc:x", "bmc:70000"])
def test_split_port_refuses(port):
    with pytest.raises(ConfigError):
        split_port(port)


def test_parse_config_password_file_and_timeouts(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("pass word\nignored\n")
    config = parse_config({"port": "bmc", "username": "admin", "password_file": str(secret), "psu": "1",
                           "pollinterval": "2"})
    assert config.password == "pass word" and "pass word" not in repr(config)
    assert config.exchange_timeout == 1.5  # a failed poll ends within one interval
    with pytest.raises(ConfigError, match="not both"):
        parse_config({"port": "bmc", "username": "a", "password": "x", "password_file": str(secret), "psu": "1"})
    with pytest.raises(ConfigError, match="psu"):
        parse_config({"port": "bmc", "username": "a", "password": "x"})
    with pytest.raises(ConfigError, match="pollinterval"):
        parse_config({"port": "bmc", "username": "a", "password": "x", "psu": "1", "pollinterval": "0"})


def test_select_psu_by_order_fru_id_and_name():
    supplies = [PowerSupply(index=1, name="Power Supply 1", fru_id=3), PowerSupply(index=2, name="Power Supply 2", fru_id=4)]
    assert select_psu(supplies, "2") is supplies[1]
    assert select_psu(supplies, "fru:3") is supplies[0]
    assert select_psu(supplies, "Power Supply 2") is supplies[1]
    with pytest.raises(ConfigError, match="it has: 1 \\(Power Supply 1, fru:3\\)"):
        select_psu(supplies, "3")


@pytest.mark.parametrize("state, chassis, expected", [
    ("ok", "on", ("OL", None)),
    ("ok", "off", ("OFF", None)),
    ("failed", "on", ("ALARM", "PSU failed")),
    ("absent", "off", ("OFF ALARM", "PSU absent")),
    ("input lost", "on", ("ALARM", "PSU input lost")),
    ("unknown", "on", ("ALARM", "PSU state unknown")),
])
def test_status_never_ol_for_a_supply_that_feeds_nothing(state, chassis, expected):
    assert status_flags(state, chassis) == expected
