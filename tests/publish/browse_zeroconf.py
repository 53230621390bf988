"""A python-zeroconf client, as Home Assistant browses NUT servers: a
ServiceBrowser on _nut._tcp and _upsd._tcp that prints one JSON line per
event (added / updated with the resolved service, removed).  The tests
run it in the client's network namespace."""

import json
import sys
import threading

from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

TYPES = ["_nut._tcp.local.", "_upsd._tcp.local."]


def main():
    zeroconf = Zeroconf(ip_version=IPVersion.All)  # as Home Assistant with IPv6 on
    lock = threading.Lock()

    def emit(record):
        with lock:
            print(json.dumps(record), flush=True)

    def on_change(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Removed:
            emit({"event": "removed", "type": service_type, "name": name})
            return
        info = zeroconf.get_service_info(service_type, name, timeout=5000)
        if info is None:
            emit({"event": "unresolved", "type": service_type, "name": name})
            return
        txt = {key.decode(): (value or b"").decode() for key, value in info.properties.items()}
        emit({"event": state_change.name.lower(), "type": service_type, "name": name, "server": info.server,
              "port": info.port, "addresses": info.parsed_addresses(), "txt": txt})

    browsers = [ServiceBrowser(zeroconf, service_type, handlers=[on_change]) for service_type in TYPES]
    emit({"event": "browsing"})
    try:
        sys.stdin.read()  # until the test closes our stdin
    finally:
        for browser in browsers:
            browser.cancel()
        zeroconf.close()


if __name__ == "__main__":
    main()
