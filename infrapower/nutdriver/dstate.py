"""The driver side of NUT's driver-socket protocol, as drivers/dstate.c
speaks it (NUT's docs/sock-protocol.txt).

upsd does not care what program sits behind a driver socket: it reads
`driver = NAME` from ups.conf and connects to `<NUT_STATEPATH>/NAME-<device>`,
then sends DUMPALL, PING, `INSTCMD cmd [param] [TRACKING id]` and
`SET var value [TRACKING id]`; the driver answers SETINFO / ADDCMD / DATAOK
/ DUMPDONE, PONG and `TRACKING <id> <code>`, and pushes SETINFO whenever a
value changes.  Both sides split lines with parseconf: one splitter for
the pack (infrapower.nut.words).

Two parts: `Published` (what upsd should know, and the lines that tell it
a change: pure, unit-tested) and `SocketServer` (the Unix socket, its
connections and line buffers).  The lab's test driver
(infrapower.lab.nut_driver) and ipmi-psu (infrapower.nutdriver.ipmi_psu)
both build on them.
"""

import errno
import os
import selectors
import socket
from dataclasses import dataclass, field
from pathlib import Path

from infrapower.nut.words import quote, split_words

# Return codes of a driver's instcmd/setvar handler (drivers/upshandler.h);
# upsd turns them into SUCCESS / ERR UNKNOWN / ERR INVALID-ARGUMENT / ERR FAILED.
STAT_HANDLED, STAT_UNKNOWN, STAT_INVALID, STAT_FAILED = 0, 1, 2, 3

# Room snmp-ups gives a string variable (SU_INFOSIZE); upsd refuses a SET
# on a STRING variable whose aux is below 1.
STRING_AUX = 128
_LISTEN_BACKLOG = 16  # dstate.c's DS_LISTEN_BACKLOG
_SEND_TIMEOUT = 2.0  # upsd reads promptly; a peer that stops reading is dropped


def socket_path(state_dir, driver, device):
    """Where upsd looks for `device`'s driver: `<statepath>/<driver>-<device>`."""
    return Path(state_dir) / f"{driver}-{device}"


def encode(value):
    """A value always quoted, as dstate.c sends it (pconf_encode inside
    "...").  A device's value is data: its control characters become
    blanks, so a line break in, say, a FRU string cannot start a second
    line to upsd (the quoter refuses them)."""
    text = "".join(" " if ord(char) < 0x20 or char == "\x7f" else char for char in str(value))
    return quote(text, always=True)


@dataclass
class Request:
    """One line from upsd: `verb` (upper case), its arguments, and the
    TRACKING id when upsd asked for one."""

    verb: str
    args: list
    tracking: str = None


def parse_request(words):
    """A request line's words as a Request; None for an empty line.
    `INSTCMD name [param] [TRACKING id]`, `SET name value [TRACKING id]`."""
    if not words:
        return None
    verb, args, tracking = words[0].upper(), list(words[1:]), None
    if verb in ("INSTCMD", "SET") and len(args) >= 3 and args[-2].upper() == "TRACKING":
        tracking, args = args[-1], args[:-2]
    return Request(verb, args, tracking)


@dataclass
class Published:
    """What upsd knows of the device: variables, commands, writable
    variables ({name: accepted values}) and whether the data is stale."""

    vars: dict = field(default_factory=dict)
    cmds: set = field(default_factory=set)
    rw: dict = field(default_factory=dict)
    stale: bool = False

    def dump_lines(self):
        """DUMPALL's answer, in the order dstate.c sends it."""
        lines = ["DATASTALE\n"] if self.stale else []
        lines += [f"SETINFO {k} {encode(v)}\n" for k, v in sorted(self.vars.items())]
        for var, accepted in sorted(self.rw.items()):
            lines += rw_lines(var, accepted)
        lines += [f"ADDCMD {c}\n" for c in sorted(self.cmds)]
        lines += [] if self.stale else ["DATAOK\n"]
        lines.append("DUMPDONE\n")
        return lines

    def change_lines(self, new):
        """The lines that turn what upsd knows (self) into `new`, as
        dstate.c sends them when a driver calls dstate_setinfo,
        dstate_delinfo, dstate_addcmd, dstate_datastale/dataok."""
        lines = []
        if new.stale and not self.stale:
            lines.append("DATASTALE\n")
        for key, value in sorted(new.vars.items()):
            if self.vars.get(key) != value:
                lines.append(f"SETINFO {key} {encode(value)}\n")
        lines += [f"DELINFO {k}\n" for k in sorted(set(self.vars) - set(new.vars))]
        lines += [f"ADDCMD {c}\n" for c in sorted(new.cmds - self.cmds)]
        lines += [f"DELCMD {c}\n" for c in sorted(self.cmds - new.cmds)]
        for var, accepted in sorted(new.rw.items()):
            if self.rw.get(var) != accepted:
                lines += rw_lines(var, accepted)
        for var in sorted(set(self.rw) - set(new.rw)):
            # upsd ignores a SETFLAGS without flags (sstate.c wants 3 words):
            # the variable is dropped, flags and enums with it, and re-added.
            lines.append(f"DELINFO {var}\n")
            if var in new.vars:
                lines.append(f"SETINFO {var} {encode(new.vars[var])}\n")
        if self.stale and not new.stale:
            lines.append("DATAOK\n")
        return lines


def rw_lines(var, accepted):
    """How dstate.c announces a writable enumerated string."""
    return [f"SETFLAGS {var} RW STRING\n", f"SETAUX {var} {STRING_AUX}\n"] + [
        f"ADDENUM {var} {encode(v)}\n" for v in accepted
    ]


class Connection:
    """One upsd connection: its socket and line buffer."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""

    def send(self, text):
        self.sock.sendall(text.encode())


class SocketServer:
    """The driver's Unix socket: connections accepted, lines split into
    words and handed to `on_words(connection, words)`, answers and updates
    sent; a connection that fails is dropped (upsd reconnects).  `poll`
    waits on the sockets and on any extra file objects registered with
    `watch` (their callback runs when readable)."""

    def __init__(self, path, on_words):
        self.path = Path(path)
        self.on_words = on_words
        self.selector = selectors.DefaultSelector()
        self.listener = None
        self.connections = {}

    # -- the listening socket ----------------------------------------------

    def open(self):
        self.path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o007)  # as dstate.c: the group (upsd) may connect
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old_umask)
        sock.listen(_LISTEN_BACKLOG)
        sock.setblocking(False)
        self.listener = sock
        self.selector.register(sock, selectors.EVENT_READ, None)

    def close(self):
        for conn in list(self.connections.values()):
            self.drop(conn)
        if self.listener is not None:
            self.selector.unregister(self.listener)
            self.listener.close()
            self.listener = None
            self.path.unlink(missing_ok=True)

    @property
    def is_open(self):
        return self.listener is not None

    def watch(self, fileobj, callback):
        """Also wake `poll` when `fileobj` is readable, and call `callback()`."""
        self.selector.register(fileobj, selectors.EVENT_READ, callback)

    # -- sending -------------------------------------------------------------

    def send(self, conn, text):
        try:
            conn.send(text)
        except OSError:
            self.drop(conn)

    def broadcast(self, text):
        for conn in list(self.connections.values()):
            self.send(conn, text)

    def drop(self, conn):
        if self.connections.pop(conn.sock.fileno(), None) is not None:
            self.selector.unregister(conn.sock)
        conn.sock.close()

    # -- receiving -------------------------------------------------------------

    def poll(self, timeout, read=True):
        """Wait up to `timeout` s; accept, read and dispatch what arrived.
        With read=False, requests pile up unread (a driver stuck in I/O)."""
        for key, _ in self.selector.select(timeout):
            if key.data is None:
                self._accept()
            elif isinstance(key.data, Connection):
                if read:
                    self._read(key.data)
            else:
                key.data()

    def _accept(self):
        try:
            sock, _ = self.listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return
            raise
        sock.settimeout(_SEND_TIMEOUT)
        conn = Connection(sock)
        self.connections[sock.fileno()] = conn
        self.selector.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn):
        try:
            data = conn.sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            self.drop(conn)
            return
        conn.buffer += data
        while b"\n" in conn.buffer:
            line, conn.buffer = conn.buffer.split(b"\n", 1)
            self.on_words(conn, split_words(line.decode(errors="replace")))
