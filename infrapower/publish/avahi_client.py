"""avahi's client library (libavahi-client3, what avahi-publish and every
avahi client use: it speaks avahi-daemon's D-Bus API) through ctypes,
limited to what publication needs: a client on a threaded poll, entry
groups, services on one interface, TXT updates in place.  No Python
D-Bus binding is needed (the pack's environments have none)."""

import ctypes
import threading
import time

from infrapower.errors import InfrapowerError

CLIENT_LIBRARY, COMMON_LIBRARY = "libavahi-client.so.3", "libavahi-common.so.3"
IF_UNSPEC, PROTO_UNSPEC, PROTO_INET, PROTO_INET6 = -1, -1, 0, 1
CLIENT_S_RUNNING, CLIENT_FAILURE = 2, 100
GROUP_UNCOMMITED, GROUP_REGISTERING, GROUP_ESTABLISHED, GROUP_COLLISION, GROUP_FAILURE = range(5)

_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)


class AvahiLibrary:
    """The two shared libraries with their prototypes; an InfrapowerError
    when they are not installed (avahi-daemon does not pull them in:
    avahi-utils does)."""

    def __init__(self):
        try:
            self.client = ctypes.CDLL(CLIENT_LIBRARY)
            self.common = ctypes.CDLL(COMMON_LIBRARY)
        except OSError as error:
            raise InfrapowerError(f"avahi-daemon runs but its client library is missing ({error}): install "
                                  "libavahi-client3, or use --publisher zeroconf") from None
        p, i, s, u16 = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint16
        prototypes = {
            (self.common, "avahi_threaded_poll_new"): (p, []),
            (self.common, "avahi_threaded_poll_get"): (p, [p]),
            (self.common, "avahi_threaded_poll_start"): (i, [p]),
            (self.common, "avahi_threaded_poll_stop"): (i, [p]),
            (self.common, "avahi_threaded_poll_free"): (None, [p]),
            (self.common, "avahi_threaded_poll_lock"): (None, [p]),
            (self.common, "avahi_threaded_poll_unlock"): (None, [p]),
            (self.common, "avahi_strerror"): (s, [i]),
            (self.common, "avahi_string_list_add"): (p, [p, s]),
            (self.common, "avahi_string_list_free"): (None, [p]),
            (self.common, "avahi_alternative_service_name"): (p, [s]),
            (self.common, "avahi_free"): (None, [p]),
            (self.client, "avahi_client_new"): (p, [p, i, _CALLBACK, p, ctypes.POINTER(i)]),
            (self.client, "avahi_client_free"): (None, [p]),
            (self.client, "avahi_client_get_state"): (i, [p]),
            (self.client, "avahi_client_errno"): (i, [p]),
            (self.client, "avahi_client_get_host_name_fqdn"): (s, [p]),
            (self.client, "avahi_entry_group_new"): (p, [p, _CALLBACK, p]),
            (self.client, "avahi_entry_group_free"): (i, [p]),
            (self.client, "avahi_entry_group_commit"): (i, [p]),
            (self.client, "avahi_entry_group_reset"): (i, [p]),
            (self.client, "avahi_entry_group_get_state"): (i, [p]),
            (self.client, "avahi_entry_group_add_service_strlst"): (i, [p, i, i, i, s, s, s, s, u16, p]),
            (self.client, "avahi_entry_group_update_service_txt_strlst"): (i, [p, i, i, i, s, s, s, p]),
        }
        for (library, name), (restype, argtypes) in prototypes.items():
            function = getattr(library, name)
            function.restype, function.argtypes = restype, argtypes
            setattr(self, name.removeprefix("avahi_"), function)

    def error_text(self, code):
        return self.strerror(code).decode(errors="replace")

    def alternative_name(self, name):
        pointer = self.alternative_service_name(name.encode())
        try:
            return ctypes.string_at(pointer).decode(errors="replace")
        finally:
            self.free(pointer)


class Connection:
    """One client of avahi-daemon on its own poll thread.  Every call into
    the library from here holds the poll's lock, as avahi's threaded poll
    wants."""

    def __init__(self, library):
        self.lib = library
        # States are read with get_state under the lock; the callbacks only
        # wake whoever waits.  Kept referenced while the C side may call them.
        self.changed = threading.Event()
        self.callback = _CALLBACK(lambda handle, state, userdata: self.changed.set())
        self.poll = self.lib.threaded_poll_new()
        if not self.poll:
            raise InfrapowerError("avahi: cannot create a poll loop")
        error = ctypes.c_int(0)
        self.client = self.lib.client_new(self.lib.threaded_poll_get(self.poll), 0, self.callback, None,
                                          ctypes.byref(error))
        if not self.client:
            self.lib.threaded_poll_free(self.poll)
            raise InfrapowerError(f"avahi-daemon cannot be reached: {self.lib.error_text(error.value)}")
        if self.lib.threaded_poll_start(self.poll) < 0:
            self.lib.client_free(self.client)
            self.lib.threaded_poll_free(self.poll)
            raise InfrapowerError("avahi: cannot start the poll thread")

    def locked(self, function, *args):
        self.lib.threaded_poll_lock(self.poll)
        try:
            return function(*args)
        finally:
            self.lib.threaded_poll_unlock(self.poll)

    def running(self):
        return self.locked(self.lib.client_get_state, self.client) == CLIENT_S_RUNNING

    def wait_running(self, timeout):
        """Until the daemon accepts services (its own host name
        established), or False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.changed.clear()
            if self.running():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.locked(self.lib.client_get_state, self.client) == CLIENT_FAILURE:
                return False
            self.changed.wait(remaining)

    def host_name(self):
        name = self.locked(self.lib.client_get_host_name_fqdn, self.client)
        return name.decode(errors="replace") if name else None

    def failure(self, what):
        code = self.locked(self.lib.client_errno, self.client)
        return InfrapowerError(f"avahi-daemon refused {what}: {self.lib.error_text(code)}")

    def close(self):
        """Frees the client: the daemon drops its entry groups (goodbyes)."""
        self.lib.threaded_poll_stop(self.poll)
        self.lib.client_free(self.client)
        self.lib.threaded_poll_free(self.poll)


def string_list(library, pairs):
    """An AvahiStringList of key=value, in order (avahi_string_list_add
    prepends: added from the last)."""
    strings = None
    for key, value in reversed(pairs):
        strings = library.string_list_add(strings, f"{key}={value}".encode())
    return strings


class Group:
    """One entry group: a service instance on some interfaces, committed
    and waited for (ESTABLISHED, after avahi-daemon probed the name)."""

    def __init__(self, connection, service, placements):
        self.conn, self.lib = connection, connection.lib
        self.service, self.placements = service, placements  # [(interface index, protocol)]
        self.name = service.name
        self.changed = threading.Event()  # set by the poll thread at each state change
        self.callback = _CALLBACK(lambda handle, state, userdata: self.changed.set())
        self.handle = connection.locked(self.lib.entry_group_new, connection.client, self.callback, None)
        if not self.handle:
            raise connection.failure(f"an entry group for {service.type}")

    def _add(self):
        strings = string_list(self.lib, self.service.txt)
        try:
            for interface, protocol in self.placements:
                code = self.lib.entry_group_add_service_strlst(self.handle, interface, protocol, 0, self.name.encode(),
                                                               self.service.type.encode(), None, None,
                                                               self.service.port, strings)
                if code < 0:
                    raise InfrapowerError(f"avahi-daemon refused {self.service.type} {self.name!r}: "
                                          f"{self.lib.error_text(code)}")
            code = self.lib.entry_group_commit(self.handle)
            if code < 0:
                raise InfrapowerError(f"avahi-daemon did not commit {self.service.type}: {self.lib.error_text(code)}")
        finally:
            self.lib.string_list_free(strings)

    def state(self):
        return self.conn.locked(self.lib.entry_group_get_state, self.handle)

    def commit(self):
        """Add the service and commit: the daemon starts probing the name."""
        self.changed.clear()
        self.conn.locked(self._add)

    def settle(self, timeout, attempts=10):
        """Wait for ESTABLISHED after commit(); a name taken on the network
        gets avahi's alternative ("NAME #2") and is committed again.
        Returns the name established."""
        for _ in range(attempts):
            deadline = time.monotonic() + timeout
            while True:
                self.changed.clear()
                state = self.state()
                remaining = deadline - time.monotonic()
                if state not in (GROUP_UNCOMMITED, GROUP_REGISTERING) or remaining <= 0:
                    break
                self.changed.wait(remaining)
            if state == GROUP_ESTABLISHED:
                return self.name
            if state != GROUP_COLLISION:
                what = "did not establish" if state in (GROUP_UNCOMMITED, GROUP_REGISTERING) else "failed"
                raise InfrapowerError(f"avahi-daemon {what} {self.service.type} {self.name!r} within {timeout:g} s")
            self.name = self.lib.alternative_name(self.name)
            self.conn.locked(self.lib.entry_group_reset, self.handle)
            self.commit()
        raise InfrapowerError(f"avahi-daemon: every name tried for {self.service.type} is taken")

    def update_txt(self, service):
        """A new TXT record in place: the daemon announces it, no goodbye."""
        strings = string_list(self.lib, service.txt)
        try:
            for interface, protocol in self.placements:
                code = self.conn.locked(self.lib.entry_group_update_service_txt_strlst, self.handle, interface,
                                        protocol, 0, self.name.encode(), service.type.encode(), None, strings)
                if code < 0:
                    raise InfrapowerError(f"avahi-daemon refused the new TXT of {service.type}: "
                                          f"{self.lib.error_text(code)}")
        finally:
            self.lib.string_list_free(strings)
        self.service = service

    def alive(self):
        return self.state() in (GROUP_REGISTERING, GROUP_ESTABLISHED)

    def free(self):
        """Withdraw (goodbye packets from the daemon)."""
        self.conn.locked(self.lib.entry_group_free, self.handle)
