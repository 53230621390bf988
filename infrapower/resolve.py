"""Name resolution within a deadline.

socket.getaddrinfo takes the resolver's own retries (often 10-30 s with a
slow DNS), past any timeout an agent was given; socket.create_connection's
timeout covers the connect only.  Literal addresses skip the resolver."""

import ipaddress
import socket
import threading


def resolve(host, port, socktype, timeout, family=socket.AF_UNSPEC):
    """getaddrinfo's answer, or socket.gaierror / socket.timeout."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, family, socktype, 0, socket.AI_NUMERICHOST)
    outcome = {}

    def lookup():
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, family, socktype)
        except OSError as error:
            outcome["error"] = error

    # A daemon thread: a lookup still running at the deadline is abandoned.
    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise socket.timeout(f"resolving {host} took longer than {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["infos"]
