"""infrapower publish (#14) against avahi-publish, avahi's own command, in
the same run: the time from starting the publisher until a python-zeroconf
client on the other side of a veth resolves the service with its TXT
record, plus the time from SIGTERM until the client sees the goodbye (one
process: bench/publish_probe.py).  Both publish _upsd._tcp with the same
TXT strings; ours also asks upsd (NETVER, VER, LIST UPS, device types,
STARTTLS) first.

- through avahi-daemon (a server namespace with its own avahi-daemon and
  dbus-daemon, as on a Debian server): ours via libavahi-client vs
  avahi-publish via the same daemon;
- through ours' built-in responder (python-zeroconf; no daemon) vs the same
  avahi-publish case.

Root only (network namespaces); not in the default set.

    python3 bench/bench.py bench/cases_publish.py
"""

import contextlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from bench import Case

IN_DEFAULT_SET = False
REPO = Path(__file__).resolve().parents[1]
LAB_PYTHON = "/usr/lib/fence-agents-infrapower/lab/bin/python"  # has zeroconf, as the tests' environment
AVAHI_NAME = "nutpub-avahi"


def _fixtures():
    """tests/publish/conftest.py's namespaces, upsd and avahi host."""
    path = REPO / "tests" / "publish" / "conftest.py"
    spec = importlib.util.spec_from_file_location("publish_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the package, and the tests' helpers it imports
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def session():
    if os.geteuid() != 0:
        raise SystemExit("bench/cases_publish.py needs root (network namespaces)")
    fixtures = _fixtures()
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as directory:
        namespaces = fixtures.Namespaces("bp").create()
        nut = avahi = None
        try:
            nut = fixtures.NutServer(namespaces, Path(directory))
            nut.add_device("ups1", "ups", reload=False)
            nut.add_device("pdu1", "pdu", reload=False)
            nut.start_upsd()
            avahi = fixtures.AvahiHost(namespaces, namespaces.server, AVAHI_NAME)
            yield {"fixtures": fixtures, "namespaces": namespaces, "nut": nut, "avahi": avahi}
        finally:
            if avahi is not None:
                avahi.stop()
            if nut is not None:
                nut.stop()
            namespaces.delete()


def cases(context=None):
    fixtures, namespaces, nut, avahi = (context[key] for key in ("fixtures", "namespaces", "nut", "avahi"))
    probe = [*namespaces.exec_argv(namespaces.client, LAB_PYTHON, str(REPO / "bench" / "publish_probe.py"))]
    ours = [LAB_PYTHON, "-m", "infrapower.cli.main", "publish", "--config-dir", str(nut.conf)]
    # The TXT record ours publishes for this upsd, for the peer to publish too.
    txt = ["txtvers=1", "protovers=1.3", "nutvers=2.8.0", "starttls=no", "devices=2", "types=pdu:1,ups:1",
           "dev0=pdu1:pdu,ups1:ups"]
    peer = [*probe, AVAHI_NAME, "--", *avahi.argv("avahi-publish", "-s", AVAHI_NAME, "_upsd._tcp", "3493", *txt)]
    env = {"PYTHONPATH": str(REPO)}
    return [
        Case(
            "publish: start → a zeroconf client resolves it, SIGTERM → it sees the goodbye; "
            "infrapower publish via avahi-daemon vs avahi-publish",
            ours=[*probe, AVAHI_NAME, "--", *avahi.argv(*ours, "--publisher", "avahi")],
            peer=peer, env=env, runs=5, warmup=1, timeout=90.0,
        ),
        Case(
            "publish: the same, infrapower publish's own responder (python-zeroconf) vs avahi-publish",
            ours=[*probe, fixtures.SERVER_HOST_NAME, "--", *fixtures.server_launch(namespaces), *ours,
                  "--publisher", "zeroconf"],
            peer=peer, env=env, runs=5, warmup=1, timeout=90.0,
        ),
    ]
