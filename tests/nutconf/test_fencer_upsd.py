"""`infrapower config add-fencer` writes a upsd.users that NUT 2.8.0's own
upsd loads: the granted outlet commands are accepted, any other command
and SET are refused with ACCESS-DENIED; the rest of the file survives."""

import subprocess
import time

import pytest

from infrapower.cli.main import main
from infrapower.lab import nut
from infrapower.lab.core import wait_until
from infrapower.nutconf import kinds
from infrapower.nutconf.syntax import ConfFile

HAND_KEPT = """\
# upsd.users, kept by hand: this comment and the admin stay as they are
[admin]
\tpassword = "lab admin"   # quoted blank
\tinstcmds = ALL
\tactions = SET
"""


def add_fencer(tmp_path, *argv, password="fence me, now"):
    secret = tmp_path / "fencer-password"
    secret.write_text(password + "\n")
    return main(["config", "add-fencer", "--password-file", str(secret), *argv])


def session(server, user, password):
    client = nut.NutSession(server.port)
    client.login(user, password)
    return client


def test_add_fencer_grants_exactly_the_outlets_and_upsd_loads_it(private_upsd, tmp_path, nutlab):
    private_upsd.users.write_text(HAND_KEPT)
    private_upsd.users.chmod(0o640)
    assert add_fencer(tmp_path, "--config-dir", str(private_upsd.conf), "--user", "fencer",
                      "--device", "tpdu", "--outlets", "1-2") == 0
    text = private_upsd.users.read_text()
    assert text.startswith(HAND_KEPT)  # nothing of the hand-kept part moved
    user = kinds.users(ConfFile.read(private_upsd.users))["fencer"]
    assert user.password == "fence me, now" and user.actions == []
    assert user.instcmds == ["outlet.1.load.off", "outlet.1.load.on", "outlet.2.load.off", "outlet.2.load.on"]
    assert private_upsd.users.stat().st_mode & 0o777 == 0o640
    private_upsd.start()
    with session(private_upsd, "fencer", "fence me, now") as fencer:
        assert fencer.instcmd("tpdu", "outlet.2.load.off") is None  # OK: granted
        for command in ("outlet.3.load.off", "load.off", "outlet.1.load.cycle"):
            with pytest.raises(nut.NutError) as refused:
                fencer.instcmd("tpdu", command)
            assert refused.value.code == "ACCESS-DENIED", command
        with pytest.raises(nut.NutError) as refused:
            fencer.instcmd("ups1", "load.off")
        assert refused.value.code == "ACCESS-DENIED"
        assert fencer.check_set_grant("tpdu") is False  # SET: ACCESS-DENIED
        fencer.instcmd("tpdu", "outlet.2.load.on")
        wait_until(lambda: fencer.get_var("tpdu", "outlet.2.status") == "on", time.monotonic() + 5, "outlet 2 on")
    with session(private_upsd, "admin", "lab admin") as admin:  # the hand-kept user still works
        assert admin.check_set_grant("tpdu") is True
    assert "fence me" not in private_upsd.log()


def test_a_password_with_a_comment_mark_is_written_as_upsd_reads_it(private_upsd, tmp_path):
    """upsd 2.8.0 drops a upsd.users line with `#` inside quotes (and a
    request line likewise): written escaped, the password works, here
    through the PyNUT drop-in (which escapes it on the wire too)."""
    import PyNUT

    password = "fence #1, now"
    assert add_fencer(tmp_path, "--users", str(private_upsd.users), "--user", "fencer", "--device", "tpdu",
                      "--outlets", "1", password=password) == 0
    assert main(["config", "check", str(private_upsd.users)]) == 0
    private_upsd.start()
    fencer = PyNUT.PyNUTClient(nut.HOST, private_upsd.port, "fencer", password, timeout=3)
    assert fencer.RunUPSCommand("tpdu", "outlet.1.load.on") == "OK"
    wrong = PyNUT.PyNUTClient(nut.HOST, private_upsd.port, "fencer", "fence ", timeout=3)
    with pytest.raises(PyNUT.PyNUTError, match="^ERR ACCESS-DENIED$"):
        wrong.RunUPSCommand("tpdu", "outlet.1.load.on")  # what a bare `#` would have cut it to
    with session(private_upsd, "fencer", password) as client:  # fence_nut's client (infrapower.nut)
        assert client.instcmd("tpdu", "outlet.1.load.on") is None
    agent = subprocess.run(["/usr/sbin/fence_nut"], input=f"ip={nut.HOST}\nipport={private_upsd.port}\n"
                           f"username=fencer\npassword={password}\nplug=tpdu:1\naction=status\n",
                           capture_output=True, text=True, timeout=30)
    assert agent.returncode == 0, agent.stderr  # on: the installed agent logged in with it
    assert "Parse error" not in private_upsd.log()


def test_the_password_written_is_the_one_upsd_uses(private_upsd, tmp_path):
    """upsd keeps a user's first password line and reads `Password` as
    `password`: a new password written after those would be ignored."""
    private_upsd.users.write_text("[fencer]\n\tPassword = stale\n\tpassword = older\n\tINSTCMDS = load.off\n")
    assert add_fencer(tmp_path, "--users", str(private_upsd.users), "--device", "tpdu", "--outlets", "1") == 0
    assert private_upsd.users.read_text() == (
        "[fencer]\n\tpassword = \"fence me, now\"\n\tinstcmds = outlet.1.load.off\n\tinstcmds = outlet.1.load.on\n")
    private_upsd.start()
    with session(private_upsd, "fencer", "fence me, now") as fencer:
        fencer.instcmd("tpdu", "outlet.1.load.on")  # the new password: accepted
        with pytest.raises(nut.NutError) as refused:
            fencer.instcmd("tpdu", "load.off")  # the stale grant went with its spelling
        assert refused.value.code == "ACCESS-DENIED"


def test_whole_load_and_set_and_a_second_run_edits_in_place(private_upsd, tmp_path):
    users = private_upsd.conf / "upsd.users"
    assert add_fencer(tmp_path, "--users", str(users), "--user", "ups-fencer", "--device", "ups1",
                      "--whole-load") == 0
    first = users.read_text()
    # Again, with SET, keeping the password (none given: the current one stays).
    assert main(["config", "add-fencer", "--users", str(users), "--user", "ups-fencer", "--device", "tpdu",
                 "--outlets", "3", "--set"]) == 0
    user = kinds.users(ConfFile.read(users))["ups-fencer"]
    assert user.password == "fence me, now" and user.actions == ["SET"]
    assert user.instcmds == ["outlet.3.load.off", "outlet.3.load.on"]
    assert first.splitlines()[:2] == users.read_text().splitlines()[:2]
    assert users.stat().st_mode & 0o777 == 0o640  # a new users file holds passwords: none for others
    private_upsd.start()
    with session(private_upsd, "ups-fencer", "fence me, now") as fencer:
        assert fencer.check_set_grant("tpdu") is True
        with pytest.raises(nut.NutError) as refused:
            fencer.instcmd("ups1", "load.off")  # the whole-load grant was replaced
        assert refused.value.code == "ACCESS-DENIED"


def chain_files(private_upsd, tmp_path):
    """The PowerChain of the private upsd's devices: a copy of its ups.conf
    with parents (NUT's drivers would refuse them in the one upsd reads)
    and a servers file: srv on tpdu outlets 1 and 2; srv2 on tpdu outlet 3
    and the whole of ups2, which feeds nothing else."""
    chain_dir = tmp_path / "chain"
    chain_dir.mkdir()
    ups_conf = ConfFile.read(private_upsd.conf / "ups.conf")
    ups_conf.path = chain_dir / "ups.conf"
    for device, parent in (("ups1", "main"), ("ups2", "main"), ("tpdu", "ups1")):
        ups_conf.set(device, "parent", parent)
    ups_conf.write()
    (chain_dir / "servers.conf").write_text(
        f"upsd = {nut.HOST}:{private_upsd.port}\nfence_nut_username = fencer\n\n"
        "[srv]\n\tpsu.psu1 = tpdu:1\n\tpsu.psu2 = tpdu:outlet2\n"
        "[srv2]\n\tpsu.psu1 = tpdu:3\n\tpsu.psu2 = ups2\n"
    )
    return chain_dir


def test_add_fencer_from_the_plan_grants_every_planned_outlet_and_nothing_else(private_upsd, tmp_path, capsys):
    private_upsd.users.write_text(HAND_KEPT)
    private_upsd.start()
    chain_dir = chain_files(private_upsd, tmp_path)
    code = add_fencer(tmp_path, "--config-dir", str(private_upsd.conf), "--user", "fencer", "--from-plan",
                      "--ups-conf", str(chain_dir / "ups.conf"), "--servers", str(chain_dir / "servers.conf"))
    out = capsys.readouterr()
    assert code == 0, out.err
    user = kinds.users(ConfFile.read(private_upsd.users))["fencer"]
    assert user.instcmds == ["load.off", "load.on", "outlet.1.load.off", "outlet.1.load.on",
                             "outlet.2.load.off", "outlet.2.load.on", "outlet.3.load.off", "outlet.3.load.on"]
    assert user.actions == []
    private_upsd.stop()
    private_upsd.start()  # upsd reads upsd.users again
    with session(private_upsd, "fencer", "fence me, now") as fencer:
        fencer.instcmd("tpdu", "outlet.3.load.off")  # planned: granted
        fencer.instcmd("tpdu", "outlet.3.load.on")
        with pytest.raises(nut.NutError) as refused:
            fencer.instcmd("tpdu", "outlet.1.load.cycle")  # fence_nut never sends it: not granted
        assert refused.value.code == "ACCESS-DENIED"


def test_from_plan_says_what_it_could_not_grant(private_upsd, tmp_path, capsys):
    """A server the plan refuses (its only PSU on ups1, which also feeds
    tpdu) is named, and the exit code says the grant is incomplete."""
    private_upsd.users.write_text(HAND_KEPT)
    private_upsd.start()
    chain_dir = chain_files(private_upsd, tmp_path)
    servers = chain_dir / "servers.conf"
    servers.write_text(servers.read_text() + "[shared]\n\tpsu.psu1 = ups1\n")
    code = add_fencer(tmp_path, "--config-dir", str(private_upsd.conf), "--user", "fencer", "--from-plan",
                      "--ups-conf", str(chain_dir / "ups.conf"), "--servers", str(servers))
    err = capsys.readouterr().err
    assert code == 1
    assert "not fenced by the plan: shared:" in err
    assert "outlet.3.load.on" in private_upsd.users.read_text()  # the others' grants are written


def test_from_plan_and_device_are_one_or_the_other(tmp_path, capsys):
    assert add_fencer(tmp_path, "--config-dir", str(tmp_path), "--device", "tpdu", "--from-plan") == 2
    assert "--from-plan" in capsys.readouterr().err
    assert add_fencer(tmp_path, "--config-dir", str(tmp_path), "--device", "tpdu") == 2
    assert "--outlets" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--outlets", "0-3"], "not a range of outlet numbers"),
        (["--outlets", "one"], "outlet numbers and ranges"),
        (["--outlets", "1", "--user", "bad user"], "letters, digits"),
    ],
)
def test_bad_usage_is_exit_2_with_one_line(tmp_path, capsys, argv, message):
    code = add_fencer(tmp_path, "--config-dir", str(tmp_path), "--device", "tpdu", *argv)
    error = capsys.readouterr().err
    assert code == 2 and message in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "upsd.users").exists()


def test_no_password_anywhere_is_refused_without_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("INFRAPOWER_NUT_PASSWORD", raising=False)
    with open("/dev/null") as no_terminal:
        monkeypatch.setattr("sys.stdin", no_terminal)
        code = main(["config", "add-fencer", "--config-dir", str(tmp_path), "--device", "tpdu", "--outlets", "1"])
    assert code == 2 and "needs a password" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [("", "is empty"), ("one\ntwo\n", "line break")],
                         ids=["empty", "two lines"])
def test_a_password_file_upsd_cannot_take_is_one_line_and_nothing_written(tmp_path, capsys, content, message):
    (tmp_path / "pw").write_text(content)
    code = main(["config", "add-fencer", "--config-dir", str(tmp_path), "--device", "tpdu", "--outlets", "1",
                 "--password-file", str(tmp_path / "pw")])
    error = capsys.readouterr().err
    assert code == 2 and message in error and len(error.strip().splitlines()) == 1 and "two" not in error
    assert not (tmp_path / "upsd.users").exists()


def test_password_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("INFRAPOWER_NUT_PASSWORD", "from env")
    assert main(["config", "add-fencer", "--config-dir", str(tmp_path), "--device", "tpdu", "--outlets", "1"]) == 0
    assert kinds.users(ConfFile.read(tmp_path / "upsd.users"))["fencer"].password == "from env"


def test_get_set_del_check(tmp_path, capsys):
    conf = tmp_path / "upsmon.conf"
    conf.write_text("# upsmon\nPOLLFREQ 5   # seconds\nMONITOR ups1@localhost 1 mon pw primary\n")
    conf.chmod(0o600)
    assert main(["config", "get", str(conf), "POLLFREQ"]) == 0
    assert capsys.readouterr().out == "5\n"
    assert main(["config", "set", str(conf), "POLLFREQ", "2"]) == 0
    assert conf.read_text() == "# upsmon\nPOLLFREQ 2\t# seconds\nMONITOR ups1@localhost 1 mon pw primary\n"
    assert main(["config", "get", str(conf), "NOPE"]) == 1
    assert main(["config", "check", str(conf)]) == 0
    assert main(["config", "del", str(conf), "MONITOR"]) == 0
    assert "MONITOR" not in conf.read_text()
    ups = tmp_path / "ups.conf"
    ups.write_text("[pdu1]\n\tdriver = snmp-ups\n")
    ups.chmod(0o640)
    assert main(["config", "set", str(ups), "pdu1.port", "10.0.0.5"]) == 0
    assert main(["config", "set", str(ups), "pdu1.override.battery.charge.low", "20"]) == 0
    assert main(["config", "get", str(ups), "pdu1.override.battery.charge.low"]) == 0
    assert capsys.readouterr().out == "20\n"
    assert main(["config", "del", str(ups), "pdu1"]) == 0 and ups.read_text() == ""
    capsys.readouterr()
    (tmp_path / "upsd.conf").write_text("LISTEN 127.0.0.1 99999\n")
    (tmp_path / "upsd.conf").chmod(0o600)
    assert main(["config", "check", "--config-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().out == f"{tmp_path}/upsd.conf:1: LISTEN port `99999` is not a TCP port\n"
    assert main(["config", "get", str(tmp_path / "missing.conf"), "X"]) == 2
    capsys.readouterr()
    assert main(["config", "set", str(ups), "pdu1.desc", "two\nlines"]) == 2
    assert "line break" in capsys.readouterr().err


def test_set_from_a_terminal_prompts_without_echo(tmp_path):
    """`set FILE KEY -` on a terminal: a prompt that does not echo (the
    value is usually a password), never shown on the screen."""
    import os
    import pty
    import select
    import sys
    from pathlib import Path

    users = tmp_path / "upsd.users"
    users.write_text("[mon]\n\tpassword = old\n")
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the command on the terminal
        try:
            os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
            os.execv(sys.executable, [sys.executable, "-m", "infrapower.cli.main", "config", "set", str(users),
                                      "mon.password", "-"])
        finally:
            os._exit(127)

    def read(deadline):
        """What the command printed next, b"" once it ended (EIO)."""
        if not select.select([terminal], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise AssertionError(f"the command printed nothing more (so far: {seen!r})")
        try:
            return os.read(terminal, 1024)
        except OSError:
            return b""

    seen = b""
    deadline = time.monotonic() + 20
    try:
        while b"mon.password: " not in seen:
            seen += read(deadline)
        os.write(terminal, b"typed secret\n")
        while chunk := read(deadline):
            seen += chunk
        while (result := os.waitpid(pid, os.WNOHANG))[0] == 0:
            assert time.monotonic() < deadline, "the command did not end"
            time.sleep(0.05)
        status = os.waitstatus_to_exitcode(result[1])
    finally:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:  # still running: a failed test
                os.kill(pid, 9)
                os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # reaped above
        os.close(terminal)
    assert status == 0
    assert b"typed secret" not in seen  # not echoed
    assert kinds.users(ConfFile.read(users))["mon"].password == "typed secret"
