"""A drop-in for NUT's own Python module (PyNUT, `PyNUTClient`), built on
the pack's NUT client (infrapower.nut.client): same constructor, methods,
return types (bytes where NUT's module returns bytes) and exceptions
(`PyNUTError`, with upsd's own `ERR ...` line as the message), so scripts
written for NUT's module run unchanged.

What differs, on purpose: every request is bounded by `timeout` (NUT's
module loops forever on `recv` once upsd closes the connection, and waits
without bound on a silent one): a closed connection, a silent server, a
refused connection or a failed TLS handshake is a PyNUTError within the
timeout, never a hang.  Such failures are PyNUTTransportError, a
PyNUTError that is also an OSError (PyNUTTimeout, also a TimeoutError,
for silence), so a script catching `socket.error` or `socket.timeout`
around NUT's module catches them here too.  Words are quoted the way upsd
reads them, so a value with a blank is one argument; an empty word is
left out, as NUT's module sends it.  `debug` never prints the password.
RunUPSCommand and SetRWVar take an optional `wait=True` (upsd's
TRACKING): "OK" only once the driver reported the command done.
"""

import socket
import time

from infrapower.errors import NutError
from infrapower.nut.client import Deadline, NutClient, NutSettings
from infrapower.nut.words import quote, split_words
from infrapower.ports import NUT_PORT

DEFAULT_TIMEOUT = 5.0


class PyNUTError(Exception):
    """Base class for custom exceptions (as NUT's module names it)."""


class PyNUTTransportError(PyNUTError, OSError):
    """upsd could not be reached or talked to (refused, closed, TLS): where
    NUT's module raises a bare OSError (socket.error), or hangs."""


class PyNUTTimeout(PyNUTTransportError, TimeoutError):
    """upsd stayed silent for the timeout: NUT's module raises
    socket.timeout there (or hangs, once upsd closed the connection)."""


def _transport_error(error, message):
    """The PyNUT error for a failed exchange (the raw-line API returns
    upsd's ERR replies, so a NutError here is the transport's): a timeout
    when the socket timed out (NutClient raises NutError `from None`,
    keeping the socket error it replaces as the context)."""
    cause = error if isinstance(error, OSError) else error.__context__
    return (PyNUTTimeout if isinstance(cause, socket.timeout) else PyNUTTransportError)(message)


def _word(value):
    """A word quoted as upsd reads it (upsd parses its socket with the
    parseconf of its files: a `#` is escaped, or upsd never answers the
    line); a line break or NUL (a second request smuggled in) is a
    PyNUTError before anything is sent."""
    try:
        return quote(value)
    except NutError as error:
        raise PyNUTError(str(error)) from None


def _request(command, *words):
    """One request line: `command` and each word quoted; an empty word is
    left out, as NUT's module sends it (`LIST VAR ` for ups=""), so upsd
    answers what it answers NUT's module (ERR INVALID-ARGUMENT)."""
    return " ".join([command] + [_word(word) for word in words if word != ""])


def _bytes(text):
    return text.encode("utf-8", "surrogateescape")


class PyNUTClient:
    """Abstraction class to access NUT (Network UPS Tools) server."""

    def __init__(self, host="127.0.0.1", port=NUT_PORT, login=None, password=None, debug=False,
                 timeout=DEFAULT_TIMEOUT, use_ssl=False, ssl_context=None, cert_verify=None, ca_file=None,
                 ca_path=None, cert_file=None, key_file=None, key_pass=None, force_ssl=False):
        self._debug = debug
        if timeout is None or not isinstance(timeout, (int, float)) or timeout < 0:
            timeout = DEFAULT_TIMEOUT
        self._host, self._port, self._login = host, port, login
        self._timeout = float(timeout) or DEFAULT_TIMEOUT
        self._say(f"Class initialization... host {host} (port {port}, timeout {timeout}), login '{login}'")
        self._client = NutClient(NutSettings(host, int(port), self._timeout, username=login or "",
                                           password=password or ""))
        self._tracking = False
        context = None
        if use_ssl or force_ssl:  # as NUT's module: an ssl_context alone starts no TLS
            context = ssl_context or self._context(cert_verify, ca_file, ca_path, cert_file, key_file, key_pass)
        self._guard(self._connect, context, bool(force_ssl), password)

    # -- plumbing -------------------------------------------------------------------

    def _say(self, message):
        if self._debug:
            print(f"[DEBUG] {message}")

    @staticmethod
    def _context(cert_verify, ca_file, ca_path, cert_file, key_file, key_pass):
        import ssl

        context = ssl.create_default_context(cafile=ca_file, capath=ca_path)
        if cert_verify is not None and not cert_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if cert_file:
            context.load_cert_chain(certfile=cert_file, keyfile=key_file, password=key_pass)
        return context

    def _guard(self, method, *args):
        """Every transport failure as a PyNUTTransportError (never a hang,
        never a bare socket error)."""
        try:
            return method(*args)
        except PyNUTError:
            raise  # already said (a PyNUTTransportError is an OSError too)
        except NutError as error:
            raise _transport_error(error, str(error)) from None
        except OSError as error:  # ssl.SSLError is an OSError
            raise _transport_error(error, f"upsd at {self._host}:{self._port}: {error}") from None
        except ValueError as error:
            raise PyNUTError(f"upsd at {self._host}:{self._port}: {error}") from None

    def _connect(self, context, required, password):
        self._client.connect()
        if context is not None:
            self._say("Requesting STARTTLS")
            refused = self._client.starttls_with(context)
            if refused and required:
                raise PyNUTError(f"STARTTLS failed but SSL is required: {refused}")
        if self._login is not None:
            reply = self._client.raw_request(_request("USERNAME", self._login))
            if not reply.startswith("OK"):
                raise PyNUTError(reply)
        if password is not None:
            word = _word(password)  # a line break: PyNUTError, before anything is sent
            self._client.hide(password)
            reply = self._client.raw_request(f"PASSWORD {word}")
            if not reply.startswith("OK"):
                raise PyNUTError(reply)

    def _ask(self, line):
        return self._guard(self._client.raw_request, line)

    def _list(self, request):
        """The lines between BEGIN and END of a LIST request; upsd's ERR
        line (or anything else) as a PyNUTError."""

        def run():
            deadline = Deadline(self._timeout)
            first = self._client.raw_request(request, deadline)
            if first != f"BEGIN {request}":
                raise PyNUTError(first)
            return self._client.raw_lines_until(f"END {request}", deadline)

        return self._guard(run)

    def _pairs(self, request, skip):
        """{bytes: bytes} from `KIND ups name "value"` lines."""
        found = {}
        for line in self._list(request):
            words = split_words(line)
            if len(words) > skip:
                found[_bytes(words[skip])] = _bytes(words[skip + 1] if len(words) > skip + 1 else "")
        return found

    def _ok(self, line, wait=False, interval=None, count=None):
        if interval is not None and count is not None and interval >= 1 and count >= 1:
            # NUT's later module spells a TRACKING wait this way.
            return self._guard(self._tracked, line, min(interval, self._timeout), interval * count)
        if wait:
            return self._guard(self._tracked, line, 0.1, self._timeout)
        reply = self._ask(line)
        # After a wait, TRACKING stays on for the connection: upsd's OK then
        # carries an id, and means what a plain OK means.
        if reply != "OK" and not (self._tracking and reply.startswith("OK TRACKING ")):
            raise PyNUTError(reply)
        return "OK"

    def _tracked(self, line, interval, limit):
        """Send with TRACKING on; "OK" once upsd reports SUCCESS within
        `limit` seconds (each request still bounded by the timeout)."""
        if not self._tracking:
            reply = self._client.raw_request("SET TRACKING ON")
            if reply != "OK":
                raise PyNUTError(reply)
            self._tracking = True
        reply = self._client.raw_request(line)
        words = reply.split()
        if words[:2] != ["OK", "TRACKING"] or len(words) < 3:
            raise PyNUTError(reply)
        end = time.monotonic() + limit
        while True:
            state = self._client.raw_request(_request("GET TRACKING", words[2]))
            if state == "SUCCESS":
                return "OK"
            if state != "PENDING":
                raise PyNUTError(state if state.startswith("ERR") else f"ERR {state}")
            if time.monotonic() > end:
                raise PyNUTError(f"ERR TRACKING PENDING after {limit:g} s")
            time.sleep(interval)

    def __del__(self):
        client = getattr(self, "_client", None)
        if client is not None:
            try:
                client.close()
            except (OSError, NutError):
                pass

    # -- NUT's API ------------------------------------------------------------------

    def GetUPSList(self):
        """{b'name': b'description'} of every device upsd serves."""
        self._say("GetUPSList from server")
        return self._pairs("LIST UPS", 1)

    def GetUPSNames(self):
        """The device names as str."""
        return [name.decode("utf-8", "surrogateescape") for name in self.GetUPSList()]

    def GetUPSVars(self, ups=""):
        """{b'variable': b'value'} of a device."""
        self._say(f"GetUPSVars {ups}")
        return self._pairs(_request("LIST VAR", ups), 2)

    def CheckUPSAvailable(self, ups=""):
        """Whether upsd lists commands for the device (True/False)."""
        try:
            self._list(_request("LIST CMD", ups))
        except PyNUTError as error:
            if str(error).startswith("ERR"):
                return False
            raise
        return True

    def GetUPSCommands(self, ups=""):
        """{b'command': b'description'} of a device (the name when upsd has
        no description)."""
        self._say(f"GetUPSCommands {ups}")
        commands = {}
        for line in self._list(_request("LIST CMD", ups)):
            words = split_words(line)
            if len(words) < 3:
                continue
            name = words[2]
            reply = split_words(self._ask(_request("GET CMDDESC", ups, name)))
            desc = reply[3] if reply[:1] == ["CMDDESC"] and len(reply) > 3 else name
            commands[_bytes(name)] = _bytes(desc)
        return commands

    def GetRWVars(self, ups=""):
        """{b'variable': b'value'} of the writable variables."""
        return self._pairs(_request("LIST RW", ups), 2)

    def SetRWVar(self, ups="", var="", value="", wait_interval_sec=None, wait_max_count=None, wait=False):
        """"OK", or PyNUTError with upsd's ERR line; with a wait, "OK" only
        after upsd's TRACKING reports SUCCESS."""
        return self._ok(_request("SET VAR", ups, var, value), wait, wait_interval_sec, wait_max_count)

    def RunUPSCommand(self, ups="", command="", wait_interval_sec=None, wait_max_count=None, wait=False):
        """"OK", or PyNUTError with upsd's ERR line; with a wait, "OK" only
        after upsd's TRACKING reports SUCCESS."""
        self._say(f"RunUPSCommand {ups} {command}")
        return self._ok(_request("INSTCMD", ups, command), wait, wait_interval_sec, wait_max_count)

    def DeviceLogin(self, ups=""):
        """LOGIN to a device as upsmon does (needs a user with an upsmon role)."""
        if ups is None or ups not in self.GetUPSNames():
            raise PyNUTError("ERR UNKNOWN-UPS")
        reply = self._ask(_request("LOGIN", ups))
        if reply.startswith(f"User {self._login}@") and reply.endswith(f"[{ups}]"):
            reply = self._guard(self._client.raw_line)
        if reply != "OK":
            raise PyNUTError(reply)
        return "OK"

    def FSD(self, ups=""):
        """Set forced shutdown on a device (PRIMARY first, MASTER for older upsd)."""
        if self._ask(_request("PRIMARY", ups)) != "OK PRIMARY-GRANTED":
            if self._ask(_request("MASTER", ups)) != "OK MASTER-GRANTED":
                raise PyNUTError("ERR ACCESS-DENIED")
        reply = self._ask(_request("FSD", ups))
        if reply != "OK FSD-SET":
            raise PyNUTError(reply)
        return "OK"

    def help(self):
        """upsd's HELP line, as bytes with its newline."""
        return _bytes(self._ask("HELP")) + b"\n"

    def ver(self):
        """upsd's VER line, as bytes with its newline."""
        return _bytes(self._ask("VER")) + b"\n"

    def ListClients(self, ups=None):
        """{b'device': [b'client address', ...]}."""
        names = self.GetUPSNames()
        if ups and ups not in names:
            raise PyNUTError("ERR UNKNOWN-UPS")
        try:
            rows = self._list(_request("LIST CLIENT", ups) if ups else "LIST CLIENT")
        except PyNUTError as error:
            if ups is None and str(error) == "ERR INVALID-ARGUMENT":
                # upsd 2.8.0 wants a device: ask for each one.
                clients = {}
                for name in names:
                    clients.update(self.ListClients(name))
                return clients
            raise
        clients = {}
        for line in rows:
            words = split_words(line)
            if words[:1] == ["CLIENT"] and len(words) >= 3:
                clients.setdefault(_bytes(words[1]), []).append(_bytes(words[2]))
        return clients
