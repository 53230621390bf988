"""Name resolution within a deadline.

socket.getaddrinfo takes the resolver's own retries (often 10-30 s with a
slow DNS), past any timeout an agent was given; socket.create_connection's
timeout covers the connect only.  Literal addresses skip the resolver."""

import ipaddress
import socket
import threading


MAX_NAME = 253
MAX_LABEL = 63


def check_host_name(host):
    """Refuse what no resolver can look up (an empty or over-long label,
    `a..b`, a 100k-character name) as a gaierror naming the problem: the
    idna codec would raise UnicodeError inside the lookup thread instead."""
    name = host[:-1] if host.endswith(".") else host
    problem = None
    if not name:
        problem = "it is empty"
    elif len(name) > MAX_NAME:
        problem = f"it is longer than {MAX_NAME} characters"
    elif any(not label for label in name.split(".")):
        problem = "it has an empty label (two dots in a row, or a leading dot)"
    elif any(len(label) > MAX_LABEL for label in name.split(".")):
        problem = f"a label is longer than {MAX_LABEL} characters"
    elif any(c.isspace() or ord(c) < 0x20 for c in name):
        problem = "it holds blanks or control characters"
    if problem is None:
        try:
            name.encode("idna")
        except UnicodeError:
            problem = "it cannot be written as a DNS name"
    if problem:
        raise socket.gaierror(socket.EAI_NONAME, f"{shown_host(host)!r} is not a valid host name: {problem}")


def shown_host(host, limit=64):
    """A host name as a message shows it: at most `limit` characters."""
    return host if len(host) <= limit else host[: limit - 3] + "..."


def resolve(host, port, socktype, timeout, family=socket.AF_UNSPEC):
    """getaddrinfo's answer, or socket.gaierror / socket.timeout."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, family, socktype, 0, socket.AI_NUMERICHOST)
    check_host_name(host)
    outcome = {}

    def lookup():
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, family, socktype)
        except (OSError, UnicodeError) as error:
            outcome["error"] = error if isinstance(error, OSError) else socket.gaierror(socket.EAI_NONAME, f"{host!r}: {error}")

    # A daemon thread: a lookup still running at the deadline is abandoned.
    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise socket.timeout(f"resolving {host} took longer than {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["infos"]
