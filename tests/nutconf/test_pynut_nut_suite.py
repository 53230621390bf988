"""NUT's own expectations of its Python client (scripts/python/module/
test_nutclient.py in NUT's source, 2.8.5), written anew for the drop-in:
NUT's dummy-ups serving `dummy` and `UPS1`, upsd 2.8.0, the same calls,
the same anticipated errors, anonymous and with a user that has an upsmon
role."""

import os
import shutil
import signal
import subprocess
import time

import pytest

import PyNUT
from infrapower.lab import nut
from infrapower.lab.core import free_port, wait_until
from infrapower.nutconf.syntax import ConfFile

DUMMY_UPS = "/lib/nut/dummy-ups"
USER, PASSWORD = "upsmon-user", "mon pass"


@pytest.fixture(scope="module")
def dummy_upsd(tmp_path_factory):
    if not (shutil.which(nut.UPSD) and os.access(DUMMY_UPS, os.X_OK)):
        pytest.skip("needs Debian's nut-server (upsd, dummy-ups)")
    directory = tmp_path_factory.mktemp("dummyups")
    conf, state = directory / "conf", directory / "state"
    conf.mkdir()
    state.mkdir()
    (conf / "dummy.dev").write_text("ups.status: OL\nbattery.charge: 100\nups.id: original\n")
    port = free_port("tcp")
    ups = ConfFile("# NUT's test devices\n", conf / "ups.conf")
    for name in ("dummy", "UPS1"):
        ups.set(name, "driver", "dummy-ups")
        ups.set(name, "port", "dummy.dev")
        ups.set(name, "desc", "Test device")
    ups.write()
    upsd_conf = ConfFile("", conf / "upsd.conf")
    upsd_conf.set(None, "LISTEN", [nut.HOST, str(port)])
    upsd_conf.write()
    users = ConfFile("", conf / "upsd.users")
    users.set(USER, "password", PASSWORD)
    users.set(USER, "upsmon", "primary")
    users.write()
    env = dict(os.environ, NUT_CONFPATH=str(conf), NUT_STATEPATH=str(state), NUT_ALTPIDPATH=str(state))
    def ready():
        try:
            return all(PyNUT.PyNUTClient(nut.HOST, port, timeout=1).GetUPSVars(n).get(b"ups.status") == b"OL"
                       for n in ("dummy", "UPS1"))
        except PyNUT.PyNUTError:
            return False

    processes = []
    try:
        with open(directory / "nut.log", "wb") as log:  # each process keeps its own copy of the descriptor
            for name in ("dummy", "UPS1"):
                processes.append(subprocess.Popen([DUMMY_UPS, "-a", name, "-F", "-u", "root"], env=env, stdout=log,
                                                  stderr=log))
            wait_until(lambda: all((state / f"dummy-ups-{n}").exists() for n in ("dummy", "UPS1")),
                       time.monotonic() + 10, "dummy-ups sockets")
            processes.append(subprocess.Popen([nut.UPSD, "-F", "-u", "root"], env=env, stdout=log, stderr=log))
        wait_until(ready, time.monotonic() + 10, "upsd serving dummy")
        yield port
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.parametrize("login", [None, USER], ids=["anonymous", "upsmon user"])
def test_nut_client_suite(dummy_upsd, login):
    client = PyNUT.PyNUTClient(login=login, password=PASSWORD if login else None, debug=False,
                               host=nut.HOST, port=dummy_upsd, use_ssl=False, force_ssl=False,
                               cert_verify=False, ca_file=None, ca_path=None, cert_file=None, key_file=None,
                               key_pass=None)
    assert client.GetUPSList() == {b"dummy": b"Test device", b"UPS1": b"Test device"}
    variables = client.GetUPSVars("dummy")
    assert variables[b"ups.status"] == b"OL" and variables[b"battery.charge"] == b"100"
    assert client.CheckUPSAvailable("dummy") is True
    assert isinstance(client.GetUPSCommands("dummy"), dict)
    assert isinstance(client.GetRWVars("dummy"), dict)

    def anticipated(call, logged_in_errors):
        with pytest.raises(PyNUT.PyNUTError) as error:
            call()
        if login is None:
            assert str(error.value) == "ERR USERNAME-REQUIRED"
        else:
            assert str(error.value) in logged_in_errors

    anticipated(lambda: client.RunUPSCommand("UPS1", "test.panel.start"), ("ERR CMD-NOT-SUPPORTED", "ERR ACCESS-DENIED"))
    anticipated(lambda: client.SetRWVar("UPS1", "ups.id", "test"), ("ERR VAR-NOT-SUPPORTED", "ERR ACCESS-DENIED"))
    assert client.ListClients("dummy") == {}
    with pytest.raises(PyNUT.PyNUTError) as error:
        client.ListClients("MissingBogusDummy")
    assert str(error.value) == "ERR UNKNOWN-UPS"
    if login is None:
        anticipated(lambda: client.DeviceLogin("dummy"), ())
        assert client.ListClients() == {}
    else:
        assert client.DeviceLogin("dummy") == "OK"
        clients = client.ListClients()
        assert isinstance(clients[b"dummy"], list) and len(clients[b"dummy"]) >= 1
    del client  # NUT's teardown: LOGOUT, no error
