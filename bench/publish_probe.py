"""One publication as a client on the network sees it, as one process for
bench/bench.py: run in the client's network namespace, it browses
_upsd._tcp with python-zeroconf, starts the publisher command it is given
(in the server's namespace), waits until the service resolves with its TXT
record, stops the publisher with SIGTERM and waits until the client sees
the goodbye.  Exit 0 only when both were seen (never timed as if it worked).

    publish_probe.py INSTANCE-NAME -- PUBLISHER-ARGV...
"""

import signal
import subprocess
import sys
import threading

from zeroconf import ServiceBrowser, ServiceStateChange, Zeroconf

SERVICE_TYPE = "_upsd._tcp.local."
DEADLINE = 30.0


def main(argv):
    instance, _, publisher_argv = argv[0], argv[1], argv[2:]
    full_name = f"{instance}.{SERVICE_TYPE}"
    seen, gone = threading.Event(), threading.Event()
    zeroconf = Zeroconf()

    def on_change(zeroconf, service_type, name, state_change):  # zeroconf passes these by keyword
        if name != full_name:
            return
        if state_change is ServiceStateChange.Removed:
            gone.set()
            return
        info = zeroconf.get_service_info(service_type, name, timeout=5000)
        if info is not None and info.properties.get(b"txtvers") == b"1":
            seen.set()

    browser = ServiceBrowser(zeroconf, SERVICE_TYPE, handlers=[on_change])
    publisher = subprocess.Popen(publisher_argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
    try:
        if not seen.wait(DEADLINE):
            print(f"not seen within {DEADLINE:g} s", file=sys.stderr)
            return 1
        publisher.send_signal(signal.SIGTERM)
        if not gone.wait(DEADLINE):
            print(f"no goodbye seen within {DEADLINE:g} s", file=sys.stderr)
            return 1
        return 0
    finally:
        if publisher.poll() is None:
            publisher.send_signal(signal.SIGTERM)
        try:
            publisher.wait(10)
        except subprocess.TimeoutExpired:
            publisher.kill()
            publisher.wait()
        browser.cancel()
        zeroconf.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
