"""The PyNUT drop-in (`import PyNUT; PyNUT.PyNUTClient(...)`) method by
method against NUT 2.8.0's own upsd, with the return types and errors of
NUT's module, anonymous and logged in (an admin, a fencer, a user with an
upsmon role); and against peers that hang up mid-reply, stop mid-line or
never answer: a PyNUTError within the timeout, never a hang."""

import socket
import threading
import time

import pytest

import PyNUT
from infrapower.lab import nut
from infrapower.lab.core import wait_until
from infrapower.nutconf.syntax import ConfFile

USERS = {"admin": "lab admin", "mon": "mon pw", "fencer": "fence me"}


@pytest.fixture
def upsd(private_upsd):
    users = ConfFile("# PyNUT tests\n", private_upsd.users)
    users.set("admin", "password", USERS["admin"])
    users.set("admin", "instcmds", "ALL")
    users.set_all("admin", "actions", ["SET", "FSD"])
    users.set("mon", "password", USERS["mon"])
    users.set("mon", "upsmon", "primary")
    users.set("fencer", "password", USERS["fencer"])
    users.set_all("fencer", "instcmds", ["outlet.1.load.off", "outlet.1.load.on"])
    users.write()
    return private_upsd.start()


def client(server, user=None, **options):
    return PyNUT.PyNUTClient(nut.HOST, server.port, user, USERS.get(user), timeout=3, **options)


def test_anonymous_reads_with_nut_module_types(upsd):
    anonymous = client(upsd)
    listed = anonymous.GetUPSList()
    assert set(listed) == {b"ups1", b"ups2", b"tpdu"} and all(isinstance(v, bytes) for v in listed.values())
    assert sorted(anonymous.GetUPSNames()) == ["tpdu", "ups1", "ups2"]
    variables = anonymous.GetUPSVars("tpdu")
    assert variables[b"outlet.1.status"] in (b"on", b"off") and b"device.type" in variables
    assert anonymous.CheckUPSAvailable("tpdu") is True
    assert anonymous.CheckUPSAvailable("nosuch") is False
    commands = anonymous.GetUPSCommands("tpdu")
    assert b"outlet.1.load.off" in commands and all(isinstance(v, bytes) for v in commands.values())
    assert anonymous.GetRWVars("tpdu") == {}
    assert anonymous.ver().startswith(b"Network UPS Tools upsd 2.8.0") and anonymous.ver().endswith(b"\n")
    assert anonymous.help().startswith(b"Commands:") and anonymous.help().endswith(b"\n")
    with pytest.raises(PyNUT.PyNUTError, match=r"^ERR UNKNOWN-UPS$"):
        anonymous.GetUPSVars("nosuch")
    with pytest.raises(PyNUT.PyNUTError, match=r"^ERR UNKNOWN-UPS$"):
        anonymous.GetUPSCommands("nosuch")
    with pytest.raises(PyNUT.PyNUTError, match=r"^ERR USERNAME-REQUIRED$"):
        anonymous.RunUPSCommand("tpdu", "outlet.1.load.off")
    with pytest.raises(PyNUT.PyNUTError, match=r"^ERR USERNAME-REQUIRED$"):
        anonymous.DeviceLogin("tpdu")
    with pytest.raises(PyNUT.PyNUTError, match=r"^ERR UNKNOWN-UPS$"):
        anonymous.ListClients("nosuch")
    # The default ups="" is left out of the request, as NUT's module sends
    # it (`LIST VAR `): upsd's answer is the same.
    for call in (anonymous.GetUPSVars, anonymous.GetUPSCommands, anonymous.GetRWVars):
        with pytest.raises(PyNUT.PyNUTError, match=r"^ERR INVALID-ARGUMENT$"):
            call()
    assert anonymous.CheckUPSAvailable() is False


def test_logged_in_commands_set_and_tracking(upsd, nutlab):
    fencer = client(upsd, "fencer")
    assert fencer.RunUPSCommand("tpdu", "outlet.1.load.off") == "OK"
    with pytest.raises(PyNUT.PyNUTError, match=r"^ERR ACCESS-DENIED$"):
        fencer.RunUPSCommand("tpdu", "outlet.2.load.off")
    with pytest.raises(PyNUT.PyNUTError, match=r"^ERR ACCESS-DENIED$"):
        fencer.SetRWVar("tpdu", "outlet.1.status", "on")
    # A line break would smuggle in a second request: refused before sending.
    with pytest.raises(PyNUT.PyNUTError, match="line break"):
        fencer.RunUPSCommand("tpdu", "outlet.1.load.on\nINSTCMD tpdu outlet.2.load.off")
    assert fencer.GetUPSVars("tpdu")[b"outlet.2.status"] == b"on"
    # TRACKING: "OK" only once the driver says the command is done.
    assert fencer.RunUPSCommand("tpdu", "outlet.1.load.on", wait=True) == "OK"
    wait_until(lambda: client(upsd).GetUPSVars("tpdu")[b"outlet.1.status"] == b"on", time.monotonic() + 5,
               "outlet 1 on")
    admin = client(upsd, "admin")
    with pytest.raises(PyNUT.PyNUTError, match=r"^ERR CMD-NOT-SUPPORTED$"):
        admin.RunUPSCommand("tpdu", "no.such.command")
    with pytest.raises(PyNUT.PyNUTError, match=r"^ERR VAR-NOT-SUPPORTED$"):
        admin.SetRWVar("tpdu", "no.such.variable", "1")
    nut.set_nut_fault(nutlab, "tpdu", "status_writable")
    try:
        wait_until(lambda: client(upsd).GetRWVars("tpdu"), time.monotonic() + 5, "tpdu's writable status")
        assert b"outlet.1.status" in client(upsd).GetRWVars("tpdu")
        assert admin.SetRWVar("tpdu", "outlet.1.status", "off", wait_interval_sec=1, wait_max_count=3) == "OK"
        assert admin.SetRWVar("tpdu", "outlet.1.status", "on") == "OK"
    finally:
        nut.set_nut_fault(nutlab, "tpdu", None)
        # The outlet commands come back at the driver's next update: the
        # next test must not meet a tpdu without them (CMD-NOT-SUPPORTED).
        wait_until(lambda: b"outlet.1.load.on" in client(upsd).GetUPSCommands("tpdu"), time.monotonic() + 5,
                   "tpdu's outlet commands back")


def test_device_login_list_clients_and_fsd(upsd):
    monitor = client(upsd, "mon")
    assert monitor.DeviceLogin("ups2") == "OK"
    with pytest.raises(PyNUT.PyNUTError, match=r"^ERR UNKNOWN-UPS$"):
        monitor.DeviceLogin("nosuch")
    clients = client(upsd).ListClients()
    assert clients == {b"ups2": [b"127.0.0.1"]}
    assert client(upsd).ListClients("ups1") == {}
    with pytest.raises(PyNUT.PyNUTError, match=r"^ERR ACCESS-DENIED$"):
        client(upsd, "fencer").FSD("ups2")
    assert monitor.FSD("ups2") == "OK"  # a primary may set FSD on its own upsd (this private one)
    assert b"FSD" in client(upsd).GetUPSVars("ups2")[b"ups.status"]


def test_wrong_password_shows_at_the_first_privileged_command(upsd):
    wrong = PyNUT.PyNUTClient(nut.HOST, upsd.port, "admin", "wrong", timeout=3)
    with pytest.raises(PyNUT.PyNUTError, match=r"^ERR ACCESS-DENIED$"):
        wrong.RunUPSCommand("tpdu", "outlet.1.load.on")


def test_a_line_break_in_the_password_is_refused_not_a_transport_error(upsd):
    with pytest.raises(PyNUT.PyNUTError, match="line break") as error:
        PyNUT.PyNUTClient(nut.HOST, upsd.port, "admin", "lab admin\nFSD ups1", timeout=3)
    assert not isinstance(error.value, OSError)


def test_tls_asked_of_a_upsd_without_it(upsd):
    with pytest.raises(PyNUT.PyNUTError, match=r"^STARTTLS failed but SSL is required: ERR FEATURE-NOT-CONFIGURED"):
        client(upsd, force_ssl=True)
    assert client(upsd, use_ssl=True).GetUPSNames()  # not forced: clear text, as NUT's module does


def test_tls_verified_against_the_lab_upsd(nutlab):
    """The lab's upsd offers STARTTLS with a certificate for 127.0.0.1
    signed by the lab's CA."""
    port, tls = nutlab.port("upsd"), nut.tls_files(nutlab)
    secure = PyNUT.PyNUTClient(nut.HOST, port, timeout=3, force_ssl=True, ca_file=tls["ca"])
    assert secure._client._sock.version().startswith("TLS")  # the socket really is TLS
    assert b"tpdu" in secure.GetUPSList()
    # Another CA: the certificate does not verify, and nothing goes on in clear text.
    for options in ({"use_ssl": True}, {"force_ssl": True}):
        with pytest.raises(PyNUT.PyNUTError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            PyNUT.PyNUTClient(nut.HOST, port, timeout=3, ca_file=tls["other_ca"], **options)
    unverified = PyNUT.PyNUTClient(nut.HOST, port, timeout=3, use_ssl=True, ca_file=tls["other_ca"],
                                   cert_verify=False)
    assert unverified._client._sock.version().startswith("TLS") and unverified.GetUPSNames()
    # As in NUT's module, an ssl_context without use_ssl starts no TLS.
    import ssl

    context = ssl.create_default_context(cafile=tls["other_ca"])
    assert not hasattr(PyNUT.PyNUTClient(nut.HOST, port, timeout=3, ssl_context=context)._client._sock, "version")
    with pytest.raises(PyNUT.PyNUTError, match="certificate verify failed|CERTIFICATE_VERIFY_FAILED"):
        PyNUT.PyNUTClient(nut.HOST, port, timeout=3, ssl_context=context, use_ssl=True)


# -- peers that misbehave ---------------------------------------------------------


class Peer:
    """A TCP peer answering each request line with `reply(line)`: bytes to
    send, then "close" or "hold" (None: answer nothing)."""

    def __init__(self, script):
        self.script = script
        self.listener = socket.create_server((nut.HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.held = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            self._answer()
        except OSError:
            pass  # closed by the test

    def _answer(self):
        connection, _ = self.listener.accept()
        self.held.append(connection)
        buffer = b""
        while True:
            data = connection.recv(4096)
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                answer, then = self.script(line.decode())
                connection.sendall(answer)
                if then == "close":
                    connection.close()
                    return

    def close(self):
        for connection in self.held:
            connection.close()
        self.listener.close()


def mid_reply(then):
    def script(line):
        if line.startswith("LIST VAR"):
            return b'BEGIN LIST VAR ups\nVAR ups battery.charge "10', then
        return b"OK\n", None

    return script


@pytest.mark.parametrize(
    "script, message, family",
    [
        (mid_reply("close"), "closed the connection", OSError),
        (mid_reply("hold"), "stopped answering", socket.timeout),
        (lambda line: (b"", "hold"), "stopped answering", socket.timeout),
    ],
    ids=["hangs up mid-reply", "stops mid-line", "never answers"],
)
def test_a_misbehaving_peer_is_an_error_within_the_timeout(script, message, family):
    peer = Peer(script)
    try:
        started = time.monotonic()
        with pytest.raises(PyNUT.PyNUTError, match=message) as error:
            PyNUT.PyNUTClient(nut.HOST, peer.port, timeout=1).GetUPSVars("ups")
        assert time.monotonic() - started < 2.5
        # What NUT's module raises where it does not hang: a script's
        # `except socket.timeout` / `except socket.error` still applies.
        assert isinstance(error.value, family)
    finally:
        peer.close()


def test_nobody_listening_is_a_pynut_error_and_a_socket_error():
    with socket.create_server((nut.HOST, 0)) as taken:
        port = taken.getsockname()[1]
    with pytest.raises(PyNUT.PyNUTError, match="cannot connect") as error:
        PyNUT.PyNUTClient(nut.HOST, port, timeout=1)
    assert isinstance(error.value, OSError)  # NUT's module raises ConnectionRefusedError


def test_debug_never_prints_the_password(upsd, capsys):
    client(upsd, "admin", debug=True).GetUPSNames()
    out = capsys.readouterr().out
    assert "[DEBUG]" in out and USERS["admin"] not in out
