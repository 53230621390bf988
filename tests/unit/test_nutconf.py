"""infrapower.nutconf: NUT's configuration files read and written back
losslessly, typed where NUT gives words a meaning, every problem as
`FILE:LINE: what is wrong`.  Plain python3, no lab."""

import difflib
import os
import stat
from pathlib import Path

import pytest

from infrapower.errors import ConfigError
from infrapower.nutconf import kinds
from infrapower.nutconf.syntax import ConfError, ConfFile

UPS_CONF = """\
# /etc/nut/ups.conf, kept by hand
maxretry = 3\t# global directive
pollinterval=2

[ups1]
\tdriver = usbhid-ups     # the big one
\tport = auto
\tdesc = "UPS \\"one\\", rack A \\# not a comment"
\tnolock

[pdu1]
  driver=snmp-ups
  port = 10.0.0.5
  community = "pass word"   # quoted blank
  parent = ups1:outlet2@nut2.example.com:3493
"""

UPSD_USERS = """\
# fencing users
[admin]
\tpassword = "s3cret \\# not a comment"
\tactions = SET
\tactions = FSD
\tinstcmds = ALL

[monuser]
\tpassword = mon
\tupsmon primary   # a directive without `=`

[fencer]
\tpassword = f\\"x
\tinstcmds = outlet.1.load.off
\tinstcmds = outlet.1.load.on
"""

UPSD_CONF = """\
# upsd.conf
MAXAGE 15
LISTEN 127.0.0.1 3493
LISTEN ::1
\tTRACKINGDELAY 3600
"""

UPSMON_CONF = """\
MONITOR ups1@localhost 1 monuser "pass word" primary
MONITOR pdu1@nut2.example.com:3493 0 monuser mon secondary
POLLFREQ 5
NOTIFYMSG ONBATT "UPS %s on battery \\# really"
NOTIFYFLAG ONBATT SYSLOG+WALL
SHUTDOWNCMD "/sbin/shutdown -h +0"
"""

NUT_CONF = "# sourced by sh too\nMODE=netserver\n"

UPSSCHED_CONF = """\
CMDSCRIPT /usr/bin/upssched-cmd
PIPEFN /run/nut/upssched.pipe
LOCKFN /run/nut/upssched.lock
AT ONBATT * START-TIMER onbatt 30
AT ONLINE * CANCEL-TIMER onbatt online
"""

FILES = {
    "ups.conf": UPS_CONF,
    "upsd.users": UPSD_USERS,
    "upsd.conf": UPSD_CONF,
    "upsmon.conf": UPSMON_CONF,
    "nut.conf": NUT_CONF,
    "upssched.conf": UPSSCHED_CONF,
}


def variants(text):
    """The file as written, with Windows line endings, without its final
    newline, and with tabs for indentation."""
    return {
        "lf": text,
        "crlf": text.replace("\n", "\r\n"),
        "no final newline": text.rstrip("\n"),
        "tabs": text.replace("  ", "\t"),
    }


@pytest.mark.parametrize("kind", sorted(FILES))
@pytest.mark.parametrize("variant", ["lf", "crlf", "no final newline", "tabs"])
def test_unmodified_files_write_back_byte_for_byte(kind, variant):
    text = variants(FILES[kind])[variant]
    assert ConfFile(text, f"/etc/nut/{kind}").text() == text


@pytest.mark.parametrize("kind", sorted(FILES))
def test_nut_own_sample_files_round_trip(kind):
    """Debian installs NUT's own samples as /etc/nut/*."""
    path = Path("/etc/nut") / kind
    if not os.access(path, os.R_OK):
        pytest.skip(f"no readable {path}")
    data = path.read_bytes()
    conf = ConfFile.read(path)
    assert conf.text().encode() == data
    assert kinds.problems(conf) == []  # a sample is all comments: nothing to complain about


def test_values_quotes_escapes_comments_and_typed_devices():
    conf = ConfFile(UPS_CONF, "ups.conf")
    assert conf.globals.get("maxretry") == "3" and conf.globals.get("pollinterval") == "2"
    found = kinds.devices(conf)
    assert found["ups1"].desc == 'UPS "one", rack A # not a comment'
    assert (found["pdu1"].driver, found["pdu1"].port) == ("snmp-ups", "10.0.0.5")
    assert found["pdu1"].parent == "ups1:outlet2@nut2.example.com:3493"
    assert conf.sections["pdu1"].get("community") == "pass word"
    assert conf.sections["ups1"].entry("nolock").value is None
    assert kinds.problems(conf) == []


def test_a_comment_mark_inside_quotes_is_flagged_and_never_written():
    """NUT's parseconf (2.8.0 to 2.8.5) refuses a `#` inside quotes
    ("Unbalanced word due to unescaped # in quotes": upsd 2.8.0 skips the
    line, so a password holding `#` would be lost); escaped, it is a `#`."""
    text = '[fencer]\n\tpassword = "p#ss"\n\tinstcmds = load.off # "a # comment"\n'
    conf = ConfFile(text, "upsd.users")
    assert conf.text() == text  # still lossless
    assert [str(p) for p in kinds.problems(conf)] == [
        "upsd.users:2: `#` inside quotes: NUT refuses the whole line (write it as \\#)"]
    conf.set("fencer", "password", "new#pass word")
    assert conf.lines[1] == '\tpassword = "new\\#pass word"'
    conf.set("fencer", "password", "bare#")
    assert conf.lines[1] == '\tpassword = "bare\\#"'
    assert kinds.users(conf)["fencer"].password == "bare#" and kinds.problems(conf) == []


def test_users_keys_in_any_case_and_the_first_password_wins():
    """upsd 2.8.0 (server/user.c): keys compared with strcasecmp, and a
    second password line "Ignoring duplicate password"."""
    conf = ConfFile("[mon]\n\tPassword = first\n\tpassword = second\n\tINSTCMDS = load.off\n"
                    "\tUpsmon = Primary\n", "upsd.users")
    user = kinds.users(conf)["mon"]
    assert (user.password, user.instcmds, user.upsmon) == ("first", ["load.off"], "Primary")
    assert [str(p) for p in kinds.problems(conf)] == [
        "upsd.users:3: a second password for [mon]: upsd keeps the first (line 2) and ignores this one"]


def test_users_repeated_keys_and_upsmon_directive():
    users = kinds.users(ConfFile(UPSD_USERS, "upsd.users"))
    assert users["admin"].password == "s3cret # not a comment"
    assert users["admin"].actions == ["SET", "FSD"] and users["admin"].instcmds == ["ALL"]
    assert users["monuser"].upsmon == "primary" and users["monuser"].actions == []
    assert users["fencer"].password == 'f"x'
    assert users["fencer"].instcmds == ["outlet.1.load.off", "outlet.1.load.on"]
    assert "s3cret" not in repr(users["admin"])


def test_listen_monitor_and_directives():
    upsd = ConfFile(UPSD_CONF, "upsd.conf")
    assert [(item.address, item.port) for item in kinds.listen(upsd)] == [("127.0.0.1", "3493"), ("::1", None)]
    assert upsd.globals.get("MAXAGE") == "15" and upsd.globals.get("TRACKINGDELAY") == "3600"
    upsmon = ConfFile(UPSMON_CONF, "upsmon.conf")
    first, second = kinds.monitors(upsmon)
    assert (first.system, first.power_value, first.user, first.password, first.role) == (
        "ups1@localhost", "1", "monuser", "pass word", "primary")
    assert second.role == "secondary" and "pass word" not in repr(first)
    assert upsmon.globals.entry("NOTIFYMSG").args == ("ONBATT", "UPS %s on battery # really")
    assert upsmon.globals.get("POLLFREQ") == "5"
    assert ConfFile(NUT_CONF, "nut.conf").globals.get("MODE") == "netserver"
    at = ConfFile(UPSSCHED_CONF, "upssched.conf").globals.all("AT")
    assert at[0].args == ("ONBATT", "*", "START-TIMER", "onbatt", "30")


def changed_lines(before, after):
    old, new = before.splitlines(), after.splitlines()

    return [line[0] + line[2:] for line in difflib.ndiff(old, new) if line[:1] in "+-"]


def test_an_edit_touches_only_its_line_keeping_indent_style_and_comment():
    conf = ConfFile(UPS_CONF, "ups.conf")
    conf.set("ups1", "driver", "nutdrv_qx")
    conf.set("pdu1", "port", "10.0.0.6")
    assert changed_lines(UPS_CONF, conf.text()) == [
        "-\tdriver = usbhid-ups     # the big one",
        "+\tdriver = nutdrv_qx\t# the big one",
        "-  port = 10.0.0.5",
        "+  port = 10.0.0.6",
    ]
    conf = ConfFile(UPS_CONF, "ups.conf")
    conf.set("pdu1", "driver", "snmp-ups2")
    assert changed_lines(UPS_CONF, conf.text()) == ["-  driver=snmp-ups", "+  driver=snmp-ups2"]


def test_added_keys_and_sections_go_where_they_belong():
    conf = ConfFile(UPS_CONF, "ups.conf")
    conf.set("ups1", "parent", "main")
    conf.set(None, "user", "nut")
    conf.set("ups3", "driver", "dummy-ups")
    assert changed_lines(UPS_CONF, conf.text()) == [
        "+user = nut", "+\tparent = main", "+", "+[ups3]", "+\tdriver = dummy-ups"]
    lines = conf.text().splitlines()
    assert lines[lines.index("\tparent = main") - 1] == "\tnolock"
    assert lines[3] == "user = nut"  # globals stay before the first section


def test_edits_keep_windows_line_endings_and_a_missing_final_newline():
    text = UPSD_CONF.replace("\n", "\r\n").rstrip("\r\n")
    conf = ConfFile(text, "upsd.conf")
    conf.add(None, "LISTEN", ["10.0.0.1", "3493"])
    conf.set(None, "MAXAGE", "30")
    assert conf.text() == text.replace("MAXAGE 15", "MAXAGE 30") + "\r\nLISTEN 10.0.0.1 3493\r\n"


def test_style_per_file_kind():
    nut = ConfFile(NUT_CONF, "nut.conf")
    nut.set(None, "MODE", "standalone")
    nut.set(None, "ALLOW_NO_DEVICE", "true")
    assert nut.text() == "# sourced by sh too\nMODE=standalone\nALLOW_NO_DEVICE=true\n"
    users = ConfFile(UPSD_USERS, "upsd.users")
    users.set("newmon", "password", "pw")
    users.set("newmon", "upsmon", "secondary")
    assert users.text().endswith("[newmon]\n\tpassword = pw\n\tupsmon secondary\n")


def test_set_all_keeps_lines_already_right_and_delete():
    conf = ConfFile(UPSD_USERS, "upsd.users")
    conf.set_all("fencer", "instcmds", ["outlet.1.load.on", "outlet.2.load.off"])
    assert changed_lines(UPSD_USERS, conf.text()) == [
        "-\tinstcmds = outlet.1.load.off", "+\tinstcmds = outlet.2.load.off"]
    assert conf.delete("admin", "actions") and not conf.delete("admin", "nothing")
    assert kinds.users(conf)["admin"].actions == []
    conf.delete("monuser")
    assert list(conf.sections) == ["admin", "fencer"]
    assert "# fencing users" in conf.text()


def test_atomic_write_keeps_mode_and_owner(tmp_path):
    path = tmp_path / "upsd.users"
    path.write_text(UPSD_USERS)
    path.chmod(0o640)
    owner = None
    if os.geteuid() == 0:
        owner = (65534, 65534)
        os.chown(path, *owner)
    conf = ConfFile.read(path)
    conf.set("fencer", "password", "new")
    conf.write()
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    if owner:
        assert (info.st_uid, info.st_gid) == owner
    assert kinds.users(ConfFile.read(path))["fencer"].password == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["upsd.users"]  # no temporary left behind
    link = tmp_path / "link.users"
    link.symlink_to(path)
    ConfFile.read(link, "upsd.users").write()
    assert link.is_symlink() and link.read_text() == path.read_text()
    fresh = tmp_path / "sub"
    fresh.mkdir()
    if os.geteuid() == 0:
        os.chown(fresh, -1, 65534)  # as /etc/nut is root:nut
    ConfFile("", fresh / "upsd.users").write()
    info = (fresh / "upsd.users").stat()
    # It will hold passwords: none for others; upsd reads it as the directory's group.
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert info.st_gid == fresh.stat().st_gid and info.st_uid == os.geteuid()
    ConfFile("", fresh / "nut.conf").write()
    assert stat.S_IMODE((fresh / "nut.conf").stat().st_mode) == 0o644


def test_as_nobody_a_new_secret_file_is_written_and_permission_errors_are_one_line(tmp_path):
    """Not root and not in the directory's group (a user's file in /tmp):
    the group stays the writer's, and the file is written; a directory it
    may not write in or look into is one line, never a traceback."""
    import shutil
    import subprocess
    import sys
    import tempfile

    nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", sys.executable]
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to run as nobody")
    if subprocess.run([*nobody, "-c", "pass"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip(f"nobody cannot run {sys.executable}")
    shared = Path(tempfile.mkdtemp(prefix="nutconf-shared-", dir="/tmp"))  # pytest's tmp_path is root's alone
    try:
        shared.chmod(0o777)  # group root, which nobody is not in

        def as_nobody(path):
            script = f"from infrapower.nutconf.syntax import ConfFile; ConfFile('', {str(path)!r}).write()"
            return subprocess.run([*nobody, "-c", script], capture_output=True, text=True, timeout=60,
                                  env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))

        result = as_nobody(shared / "upsd.users")
        assert result.returncode == 0, result.stderr
        info = (shared / "upsd.users").stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)
        # A path it cannot even look at: one ConfError line, no traceback.
        result = as_nobody(tmp_path / "upsd.users")
        assert "ConfError" in result.stderr and "cannot write: Permission denied" in result.stderr
        assert "PermissionError" not in result.stderr
        shared.chmod(0o755)  # now nobody may not write in it: the temporary file cannot be made
        result = as_nobody(shared / "upsd.users")
        assert "cannot write: Permission denied" in result.stderr and "PermissionError" not in result.stderr
        # The command, on a directory nobody may not look into: one line, exit 2.
        private = tmp_path / "private"
        private.mkdir(mode=0o700)
        for argv in (["get", str(private / "ups.conf"), "a.b"], ["check", "--config-dir", str(private)],
                     ["add-fencer", "--config-dir", str(private), "--device", "d", "--outlets", "1"]):
            result = subprocess.run([*nobody, "-m", "infrapower.cli.main", "config", *argv],
                                    capture_output=True, text=True, timeout=60,
                                    env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]),
                                             INFRAPOWER_NUT_PASSWORD="x"))
            assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, (argv, result.stderr)
            assert "Permission denied" in result.stderr
    finally:
        shutil.rmtree(shared)


def test_a_line_break_in_a_value_is_a_conf_error_not_written(tmp_path):
    path = tmp_path / "upsd.users"
    path.write_text(UPSD_USERS)
    conf = ConfFile.read(path)
    for value in ("two\nlines", "nul\0", ["LISTEN", "a\rb"]):
        with pytest.raises(ConfError, match=r"upsd.users:0: a value for password holds a line break") as error:
            conf.set("fencer", "password", value)
        assert "lines" not in str(error.value) and "nul" not in str(error.value)  # never the value (a password)
    assert conf.text() == UPSD_USERS


@pytest.mark.parametrize(
    "name, text, line, message",
    [
        ("ups.conf", '[a]\n\tdesc = "open\n', 2, "unterminated quote"),
        ("ups.conf", "[a]\n[a]\n", 2, "section [a] again (first at line 1)"),
        ("ups.conf", "[a]\n\tdesc = one two\n", 2, "expected `key = value`"),
        ("ups.conf", "# c\n[]\n", 2, "empty section name"),
        ("upsd.users", "[a\n", 1, "a section header is `[name]`"),
        ("upsd.conf", "MAXAGE 1\n= 3\n", 2, "`=` without a key"),
        ("upsd.users", "[a]\n\tpassword = x = y\n", 2, "expected `key = value`"),
    ],
)
def test_syntax_errors_say_file_and_line(name, text, line, message):
    with pytest.raises(ConfError) as error:
        ConfFile(text, f"/etc/nut/{name}")
    assert isinstance(error.value, ConfigError)
    assert str(error.value).startswith(f"/etc/nut/{name}:{line}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("text", ["[a]\n\tpassword = s3cr=et\n", "[a]\n\tpassword = s3cr et x\n", "= s3cret\n",
                                  "[a]\n\tpassword s3cret\n"])
def test_a_syntax_error_never_shows_the_value(text):
    """The message goes to a terminal or a log; the line may hold a password."""
    with pytest.raises(ConfError) as error:
        ConfFile(text, "/etc/nut/ups.conf")
    assert "s3cr" not in str(error.value)


@pytest.mark.parametrize(
    "name, text, line, message",
    [
        ("ups.conf", "maxretyr = 3\n[u]\n\tdriver = dummy-ups\n", 1, "unknown global `maxretyr`"),
        ("ups.conf", "[u]\n\tdriver = dummy-ups\n", 1, "[u] has no port"),
        ("upsd.users", "[u]\n\tpassword = x\n\tactions = SET FSD shutdown\n", 3, "unknown action `shutdown`"),
        ("upsd.users", "[u]\n\tpassword = x\n\tinstcmd = load.off\n", 3, "unknown key in [u] `instcmd`"),
        ("upsd.users", "[u]\n\tupsmon primary\n", 1, "[u] has no password"),
        ("upsd.users", "[u]\n\tpassword = x\n\tupsmon boss\n", 3, "upsmon role `boss`"),
        ("upsd.conf", "LISTEN 127.0.0.1 99999\n", 1, "LISTEN port `99999`"),
        ("upsd.conf", "LISTEN\n", 1, "LISTEN wants: address [port]"),
        ("upsd.conf", "MAXGAE 15\n", 1, "unknown directive `MAXGAE`"),
        ("upsmon.conf", "MONITOR ups@localhost 1 mon pw\n", 1, "MONITOR wants"),
        ("upsmon.conf", "MONITOR ups@localhost 1 mon pw boss\n", 1, "MONITOR role `boss`"),
        ("nut.conf", "MOED=none\n", 1, "unknown setting `MOED`"),
        ("upssched.conf", "ATT ONBATT * EXECUTE x\n", 1, "unknown directive `ATT`"),
    ],
)
def test_problems_nut_would_refuse_or_ignore(name, text, line, message):
    found = [str(problem) for problem in kinds.problems(ConfFile(text, f"/etc/nut/{name}"))]
    assert any(item.startswith(f"/etc/nut/{name}:{line}: ") and message in item for item in found), found


def test_check_dir_reads_every_file_and_flags_readable_secrets(tmp_path):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o640)
    assert kinds.check_dir(tmp_path) == []
    (tmp_path / "upsd.users").chmod(0o644)
    (tmp_path / "upsd.conf").write_text('LISTEN "open\n')
    found = [str(problem) for problem in kinds.check_dir(tmp_path)]
    assert found == [f"{tmp_path}/upsd.conf:1: unterminated quote",
                     f"{tmp_path}/upsd.users:0: holds passwords but others may read it: chmod o-rwx"]


def test_unreadable_and_non_utf8_files(tmp_path):
    with pytest.raises(ConfError, match=r"/missing/ups.conf:0: cannot read"):
        ConfFile.read("/missing/ups.conf")
    (tmp_path / "ups.conf").write_bytes(b"# ok\n# \xff\n")
    with pytest.raises(ConfError, match=r"ups.conf:2: not UTF-8"):
        ConfFile.read(tmp_path / "ups.conf")
