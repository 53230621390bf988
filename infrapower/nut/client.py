"""A client of NUT's network protocol (upsd, TCP 3493), for fencing.

Written here rather than taken from PyNUTClient (PyPI 2.8.5), which spins
forever when upsd closes the connection and knows nothing of TRACKING.

Every operation runs against one deadline that bounds each connect, read
and write: a peer that closes the connection or goes silent is a NutError
within that bound, never a hang.  Every ERR reply becomes a NutError whose
message says what to change.
"""

import logging
import socket
import time
from dataclasses import dataclass, field

from infrapower.errors import NutError
from infrapower.nut.words import quote, split_words
from infrapower.ports import NUT_PORT
from infrapower.resolve import resolve, shown_host

LINE_LIMIT = 65536
# A variable no driver publishes (NUT names are lowercase dotted words; this
# one is in a namespace NUT does not use), for check_set_grant.
PROBE_VARIABLE = "infrapower.grant.probe"

log = logging.getLogger(__name__)

# ERR codes → what the admin should look at (the generic part; callers
# add what only they know, such as which user and command).
ERROR_HINTS = {
    "ACCESS-DENIED": "upsd refused: check the user's grants in upsd.users",
    "UNKNOWN-UPS": "upsd serves no such device",
    "VAR-NOT-SUPPORTED": "the device has no such variable",
    "CMD-NOT-SUPPORTED": "the device does not offer that command (see `upscmd -l`)",
    "INVALID-ARGUMENT": "upsd rejected an argument",
    "INSTCMD-FAILED": "the driver failed to run the command",
    "SET-FAILED": "the driver failed to set the variable",
    "READONLY": "the variable is read-only",
    "TOO-LONG": "the value is too long",
    "FEATURE-NOT-SUPPORTED": "this upsd does not support that feature",
    "FEATURE-NOT-CONFIGURED": "upsd has TLS support but no certificate configured (CERTFILE in upsd.conf)",
    "ALREADY-SSL-MODE": "the connection is already in TLS mode",
    "DRIVER-NOT-CONNECTED": "upsd has no connection to the device's driver: is the driver running?",
    "DATA-STALE": "the driver lost contact with the device (data stale): check the device and its driver",
    "ALREADY-LOGGED-IN": "already logged in",
    "INVALID-PASSWORD": "invalid password",
    "ALREADY-SET-PASSWORD": "password already set",
    "INVALID-USERNAME": "invalid username",
    "ALREADY-SET-USERNAME": "username already set",
    "USERNAME-REQUIRED": "upsd wants a username for this: set username (login)",
    "PASSWORD-REQUIRED": "upsd wants a password for this: set password or password_script",
    "UNKNOWN-COMMAND": "upsd does not know this command (too old a NUT?)",
    "INVALID-VALUE": "the value is not valid for the variable",
}


class Deadline:
    """The time an operation may still take."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self):
        left = self.end - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        return left


@dataclass(frozen=True)
class NutSettings:
    """How to reach and use one upsd: what fence_nut's options say
    (infrapower.options.nut_settings), or what the PowerChain knows."""

    host: str
    port: int = NUT_PORT
    timeout: float = 5.0  # each connect, read and write, and each operation as a whole
    tls: bool = False  # STARTTLS, then required (see NutClient.connect)
    ca: str = None  # a CA file or directory to verify upsd with (implies tls)
    username: str = ""
    password: str = field(default="", repr=False)  # never in a repr, so never in a log
    ups: str = None  # the device a plug without DEVICE: names
    verbose: bool = False


class NutClient:
    """One connection to upsd.  Use as a context manager; every public
    call is bounded by the settings' timeout."""

    def __init__(self, settings):
        self.settings = settings
        self.host, self.port, self.timeout = settings.host, int(settings.port), float(settings.timeout)
        self.where = f"{shown_host(self.host)}:{self.port}"  # for messages: a host may be 100k characters
        self.verbose = settings.verbose
        self._sock = None
        self._buffer = b""
        self._secret_words = set()
        self.requests = 0  # round trips to upsd (a pipelined batch is one)

    # -- transport -----------------------------------------------------------

    def connect(self):
        """Open the connection, and STARTTLS when the settings ask for TLS
        in any way (tls, a CA): then TLS is required, and a upsd that
        refuses it is an error, never a fall-back to clear text in which
        the password would be sent (a man in the middle needs only to
        answer ERR to STARTTLS)."""
        import os

        ca = self.settings.ca
        ca_dir = ca if ca and os.path.isdir(ca) else None
        ca_file = ca if ca and not ca_dir else None

        deadline = Deadline(self.timeout)
        try:
            address = resolve(self.host, self.port, socket.SOCK_STREAM, deadline.remaining())[0][4]
            self._sock = socket.create_connection(address[:2], timeout=deadline.remaining())
        except socket.timeout:
            raise NutError(f"no answer from upsd at {self.where} within {self.timeout:g} s") from None
        except OSError as error:
            raise NutError(f"cannot connect to upsd at {self.where}: {error.strerror or error}") from None
        if self.settings.tls or ca:
            self._starttls(deadline, ca_file, ca_dir)
        return self

    def _starttls(self, deadline, ca_file, ca_dir):
        import ssl

        # The CA first: a wrong path is the admin's to fix, before any I/O.
        try:
            context = ssl.create_default_context(cafile=ca_file, capath=ca_dir)
        except ssl.SSLError as error:  # an OSError too: this one first
            raise NutError(f"ssl_ca {ca_file or ca_dir}: not a PEM CA certificate ({error.reason or error})") from None
        except OSError as error:
            raise NutError(f"ssl_ca {ca_file or ca_dir}: {error.strerror or error}") from None
        try:
            self._exchange("STARTTLS", deadline)
        except NutError as error:
            raise NutError(
                f"upsd at {self.where} does not offer TLS ({error}); TLS was asked for (ssl, ssl_ca), "
                "so nothing is sent in clear text", error.code
            ) from None
        self._wrap(context, deadline)

    def _wrap(self, context, deadline):
        """TLS over the connection, after upsd's OK STARTTLS."""
        import ssl

        if self._buffer:
            # Bytes after "OK STARTTLS" arrived in clear text; read later,
            # they would pass for upsd's words over TLS (CVE-2011-0411).
            raise NutError(
                f"upsd at {self.where} sent data after OK STARTTLS, before TLS began: "
                "refused (something on the path is injecting)"
            )
        # upsd certificates are usually issued for the host name admins
        # configure, which is what `ip` holds.
        try:
            self._sock.settimeout(deadline.remaining())
            self._sock = context.wrap_socket(self._sock, server_hostname=self.host)
        except ssl.SSLError as error:
            raise NutError(f"TLS with upsd at {self.where} failed: {error.reason or error} (check ssl_ca)") from None
        except (socket.timeout, OSError) as error:
            raise NutError(f"TLS with upsd at {self.where} failed: {error}") from None

    def starttls_with(self, context):
        """STARTTLS with the caller's SSL context (PyNUT's certificates and
        verification choices): None once TLS is up, else upsd's refusal
        (the connection is still in clear text: the caller decides)."""
        deadline = Deadline(self.timeout)
        reply = self.raw_request("STARTTLS", deadline)
        if not reply.startswith("OK STARTTLS"):
            return reply
        self._wrap(context, deadline)
        return None

    def close(self):
        if self._sock is not None:
            try:
                self._sock.settimeout(0.2)
                self._sock.sendall(b"LOGOUT\n")
            except OSError:
                pass
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _masked(self, line):
        """A request as the debug log may show it: the PASSWORD line
        entirely masked, and the password wherever else it might appear."""
        if line.upper().startswith("PASSWORD "):
            return "PASSWORD ****"
        for secret in self._secret_words:
            line = line.replace(secret, "****")
        return line

    def _send(self, line, deadline, shown=None):
        if self.verbose:
            log.debug("upsd <- %s", self._masked(line if shown is None else shown))
        try:
            self._sock.settimeout(deadline.remaining())
            self._sock.sendall(line.encode() + b"\n")
        except socket.timeout:
            raise NutError(f"upsd at {self.where} stopped answering (timeout {self.timeout:g} s)") from None
        except OSError as error:
            raise NutError(f"upsd at {self.where} closed the connection ({error})") from None

    def _read_line(self, deadline):
        while b"\n" not in self._buffer:
            try:
                self._sock.settimeout(deadline.remaining())
                chunk = self._sock.recv(4096)
            except socket.timeout:
                raise NutError(f"upsd at {self.where} stopped answering (timeout {self.timeout:g} s)") from None
            except OSError as error:
                raise NutError(f"upsd at {self.where} closed the connection ({error})") from None
            if not chunk:
                raise NutError(f"upsd at {self.where} closed the connection")
            self._buffer += chunk
            if len(self._buffer) > LINE_LIMIT:
                raise NutError(f"upsd at {self.where} sent an over-long line")
        line, self._buffer = self._buffer.split(b"\n", 1)
        text = line.decode("utf-8", "replace").rstrip("\r")
        if self.verbose:
            log.debug("upsd -> %s", text)
        return text

    def _exchange(self, line, deadline=None):
        """Send one request, return its one-line reply (ERR raises)."""
        reply = self._pipelined([line], deadline)[0]
        if isinstance(reply, NutError):
            raise reply
        return reply

    def _pipelined(self, lines, deadline=None):
        """Send `lines` at once and read their one-line replies in order
        (upsd answers each request in turn): one round trip.  Each reply
        is its text, or the NutError its ERR means."""
        deadline = deadline or Deadline(self.timeout)
        if self._sock is None:
            raise NutError("not connected to upsd")
        if self.verbose:
            for line in lines[:-1]:
                log.debug("upsd <- %s", self._masked(line))
        self._send("\n".join(lines), deadline, shown=lines[-1])
        self.requests += 1
        replies = []
        for _ in lines:
            reply = self._read_line(deadline)
            try:
                _raise_for_error(reply)
            except NutError as error:
                reply = error
            replies.append(reply)
        return replies

    def _list(self, request):
        """A LIST request: the words of every line between BEGIN and END."""
        deadline = Deadline(self.timeout)
        self._send(request, deadline)
        self.requests += 1
        first = self._read_line(deadline)
        _raise_for_error(first)
        if first != f"BEGIN {request}":
            raise NutError(f"unexpected reply from upsd to {request}: {first}")
        rows = []
        while True:
            line = self._read_line(deadline)
            if line == f"END {request}":
                return rows
            rows.append(split_words(line))

    # -- raw lines: upsd's replies as they come (PyNUT reports ERR itself) ---

    def hide(self, secret):
        """Mask `secret` wherever a debug log would show it."""
        if secret:
            self._secret_words.add(quote(secret))

    def raw_request(self, line, deadline=None):
        """Send one line, return upsd's one-line reply as it came: an ERR
        reply is returned, not raised; a dead or silent upsd raises
        NutError within the timeout."""
        deadline = deadline or Deadline(self.timeout)
        if self._sock is None:
            raise NutError("not connected to upsd")
        self._send(line, deadline)
        self.requests += 1
        return self._read_line(deadline)

    def raw_line(self, deadline=None):
        """The next line upsd sends (a second reply line, as to LOGIN)."""
        return self._read_line(deadline or Deadline(self.timeout))

    def raw_lines_until(self, end, deadline=None):
        """The lines upsd sends before the line `end` (a LIST's body)."""
        deadline = deadline or Deadline(self.timeout)
        rows = []
        while True:
            line = self._read_line(deadline)
            if line == end:
                return rows
            rows.append(line)

    # -- protocol ------------------------------------------------------------

    def login(self, username, password):
        """USERNAME + PASSWORD.  upsd answers OK to both whatever they are;
        a wrong password shows only at the first privileged command."""
        if password:
            self._secret_words.add(quote(password))
        lines = [f"USERNAME {quote(username)}"] + ([f"PASSWORD {quote(password)}"] if password else [])
        for reply in self._pipelined(lines):  # one round trip
            if isinstance(reply, NutError):
                raise reply

    def list_ups(self):
        """{name: description} of every device upsd serves."""
        return {row[1]: row[2] if len(row) > 2 else "" for row in self._list("LIST UPS")}

    def list_var(self, ups):
        return {row[2]: row[3] if len(row) > 3 else "" for row in self._list(f"LIST VAR {quote(ups)}")}

    def list_cmd(self, ups):
        return [row[2] for row in self._list(f"LIST CMD {quote(ups)}")]

    def list_rw(self, ups):
        return {row[2]: row[3] if len(row) > 3 else "" for row in self._list(f"LIST RW {quote(ups)}")}

    def list_enum(self, ups, name):
        """The values upsd accepts for an enumerated RW variable ([] if it
        has no list)."""
        try:
            rows = self._list(f"LIST ENUM {quote(ups)} {quote(name)}")
        except NutError as error:
            if error.code == "VAR-NOT-SUPPORTED":
                return []
            raise
        return [row[3] for row in rows if len(row) > 3]

    def get_var(self, ups, name):
        words = split_words(self._exchange(f"GET VAR {quote(ups)} {quote(name)}"))
        if len(words) < 4 or words[0] != "VAR":
            raise NutError(f"unexpected reply from upsd to GET VAR: {' '.join(words)}")
        return words[3]

    def get_vars(self, requests):
        """[value or NutError] of GET VAR for every (ups, name) asked, in
        one round trip (pipelined)."""
        replies = self._pipelined([f"GET VAR {quote(ups)} {quote(name)}" for ups, name in requests])
        values = []
        for (ups, name), reply in zip(requests, replies):
            if isinstance(reply, NutError):
                values.append(reply)
                continue
            words = split_words(reply)
            if len(words) < 4 or words[:3] != ["VAR", ups, name]:
                raise NutError(f"unexpected reply from upsd to GET VAR: {' '.join(words)}")
            values.append(words[3])
        return values

    def set_tracking(self, on=True):
        """Ask upsd to track command results; False when the server is
        older than NUT 2.8.0 and has no TRACKING."""
        try:
            self._exchange(f"SET TRACKING {'ON' if on else 'OFF'}")
            return True
        except NutError as error:
            if error.code in ("UNKNOWN-COMMAND", "INVALID-ARGUMENT", "FEATURE-NOT-SUPPORTED", "VAR-NOT-SUPPORTED"):
                return False
            raise

    def instcmd(self, ups, command, value=None):
        """Run an instant command; returns the tracking id when TRACKING is
        on, else None.  upsd's OK only means "passed to the driver"."""
        request = f"INSTCMD {quote(ups)} {quote(command)}"
        if value is not None:
            request += f" {quote(value)}"
        words = split_words(self._exchange(request))
        return words[2] if len(words) >= 3 and words[1] == "TRACKING" else None

    def set_var(self, ups, name, value):
        words = split_words(self._exchange(f"SET VAR {quote(ups)} {quote(name)} {quote(value)}"))
        return words[2] if len(words) >= 3 and words[1] == "TRACKING" else None

    def check_set_grant(self, ups):
        """Whether the logged-in user may SET on `ups`, without changing
        anything: upsd 2.8.0 checks the password and the SET action before
        it looks the variable up, so SET on a variable no device has answers
        VAR-NOT-SUPPORTED (granted) or ACCESS-DENIED (wrong password, or no
        `actions = SET`).  There is no such probe for INSTCMD: upsd checks
        that the command exists before the grant, so any probe that passes
        the grant would run the command."""
        try:
            self._exchange(f"SET VAR {quote(ups)} {PROBE_VARIABLE} probe")
        except NutError as error:
            if error.code == "VAR-NOT-SUPPORTED":
                return True
            if error.code == "ACCESS-DENIED":
                return False
            raise
        # A driver that somehow has the variable: it was writable and the
        # write was accepted, so the grant is there.
        return True

    def get_tracking(self, tracking_id):
        """PENDING, SUCCESS, or raises NutError for a failed command."""
        return self._exchange(f"GET TRACKING {quote(tracking_id)}").strip()


def _raise_for_error(reply):
    if reply.startswith("ERR"):
        words = split_words(reply)
        code = words[1] if len(words) > 1 else "UNKNOWN"
        extra = " ".join(words[2:])
        hint = ERROR_HINTS.get(code, "")
        message = f"upsd: {code}" + (f" {extra}" if extra else "") + (f": {hint}" if hint else "")
        raise NutError(message, code)
