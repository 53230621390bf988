"""`infrapower publish` with its built-in responder (python-zeroconf), seen
by three independent clients in another network namespace: python-zeroconf's
ServiceBrowser (Home Assistant's path), avahi-browse through an
avahi-daemon, and NUT's own nut-scanner -A.  Each must see the address,
the port, the server's real host name, the devices; the device an admin
adds; and nothing after SIGTERM.  The tests run in order on one publisher."""

import subprocess
import sys

import pytest

# Bound at collection, while "conftest" is this directory's: the whole suite
# loads every directory's conftest.py under that one module name.
from conftest import NUT_PORT, REPO, SERVER_ADDRESS, SERVER_HOST_NAME, Publisher, pack_env, server_launch, wait_for
from conftest import SERVICE_TYPES as TYPES
from infrapower.publish.txt import parse_devices

NUT_TLS = True  # upsd offers STARTTLS here (the avahi module's does not)
DEADLINE = 40  # seconds: mDNS announcements and caches, on a loaded 2-core machine


@pytest.fixture(scope="module")
def publisher(namespaces, nut_server, browser, avahi_client, tmp_path_factory):
    running = Publisher(server_launch(namespaces), nut_server, tmp_path_factory.mktemp("publisher"), "--publisher", "zeroconf",
                        "--grace", "120")
    yield running
    running.stop()


def zeroconf_sees(browser, devices):
    views = browser.sees(SERVER_HOST_NAME, devices)
    return views and list(views.values())


def avahi_browse(avahi_client, service_type):
    """{name: {host, address, port, txt}} from avahi-browse -rpt (resolved, parsable)."""
    result = avahi_client.run("avahi-browse", "-rpt", service_type)
    found = {}
    for line in result.stdout.splitlines():
        fields = line.split(";")
        if fields[0] != "=" or len(fields) < 10 or fields[2] != "IPv4":
            continue
        txt = {}
        for item in fields[9].split('" "'):
            key, _, value = item.strip('"').partition("=")
            txt[key] = value
        found[fields[3]] = {"host": fields[6], "address": fields[7], "port": int(fields[8]), "txt": txt}
    return found


def avahi_sees(avahi_client, devices):
    views = [avahi_browse(avahi_client, kind).get(SERVER_HOST_NAME) for kind in TYPES]
    return all(view and parse_devices(view["txt"]) == devices for view in views) and views


def nut_scanner(avahi_client):
    result = avahi_client.run("nut-scanner", "-A", "-q")
    return result.stdout


def test_zeroconf_browser_sees_upsd_and_devices(publisher, browser):
    views = wait_for(lambda: zeroconf_sees(browser, {"ups1": "ups", "pdu1": "pdu"}), DEADLINE,
                     f"both services in the browser: {browser.events}")
    for view in views:
        assert view["server"] == f"{SERVER_HOST_NAME}.local."
        assert view["addresses"] == [SERVER_ADDRESS]  # never loopback
        assert view["port"] == NUT_PORT
        assert view["name"].startswith(SERVER_HOST_NAME)
        txt = view["txt"]
        assert txt["txtvers"] == "1" and txt["protovers"] == "1.3" and txt["nutvers"] == "2.8.0"
        assert txt["starttls"] == "yes" and txt["devices"] == "2" and txt["types"] == "pdu:1,ups:1"
    publisher.wait_log("published _nut._tcp and _upsd._tcp")


def test_avahi_browse_sees_upsd_and_devices(publisher, avahi_client):
    views = wait_for(lambda: avahi_sees(avahi_client, {"ups1": "ups", "pdu1": "pdu"}), DEADLINE,
                     "both services in avahi-browse -rpt")
    for view in views:
        assert view["host"] == f"{SERVER_HOST_NAME}.local"
        assert view["address"] == SERVER_ADDRESS and view["port"] == NUT_PORT
        assert view["txt"]["protovers"] == "1.3"


def test_nut_scanner_finds_upsd_and_devices(publisher, avahi_client):
    output = wait_for(lambda: (lambda text: "ups1@" in text and "pdu1@" in text and text)(nut_scanner(avahi_client)),
                      DEADLINE, "nut-scanner -A to list ups1 and pdu1")
    assert f"ups1@{SERVER_ADDRESS}" in output or f"ups1@{SERVER_HOST_NAME}" in output, output


def test_every_client_sees_a_device_added(publisher, browser, avahi_client, nut_server):
    nut_server.add_device("ups2", "ups")
    devices = {"ups1": "ups", "pdu1": "pdu", "ups2": "ups"}
    wait_for(lambda: zeroconf_sees(browser, devices), DEADLINE, f"ups2 in the zeroconf browser: {browser.events[-3:]}")
    wait_for(lambda: avahi_sees(avahi_client, devices), DEADLINE, "ups2 in avahi-browse -rpt")
    wait_for(lambda: "ups2@" in nut_scanner(avahi_client), DEADLINE, "ups2 in nut-scanner -A")
    publisher.wait_log("updated _nut._tcp and _upsd._tcp")


def test_upsd_restart_is_survived(publisher, browser, nut_server):
    nut_server.stop_upsd()
    publisher.wait_log("does not answer")
    nut_server.add_device("pdu2", "pdu", reload=False)
    nut_server.start_upsd()
    publisher.wait_log("answers again")
    devices = {"ups1": "ups", "pdu1": "pdu", "ups2": "ups", "pdu2": "pdu"}
    wait_for(lambda: zeroconf_sees(browser, devices), DEADLINE, "pdu2 in the zeroconf browser after the restart")
    assert publisher.process.poll() is None


def test_sigterm_withdraws_the_records(publisher, browser, avahi_client):
    assert publisher.stop() == 0
    assert "Traceback" not in publisher.log()
    wait_for(lambda: not any(browser.views(SERVER_HOST_NAME).values()), DEADLINE,
             f"the zeroconf browser to see both removals: {browser.events[-3:]}")
    wait_for(lambda: not any(avahi_browse(avahi_client, kind) for kind in TYPES), DEADLINE,
             "avahi-browse -rpt to see nothing")
    wait_for(lambda: "@" not in nut_scanner(avahi_client), DEADLINE, "nut-scanner -A to find nothing")


def test_a_wildcard_listen_publishes_the_veth_address_only(namespaces, tmp_path):
    """LISTEN 0.0.0.0 read in the server namespace: its veth address, not
    loopback."""
    (tmp_path / "upsd.conf").write_text("LISTEN 0.0.0.0 3493\n")
    script = ("from infrapower.publish import listen; "
              f"print([(e.port, [str(a) for a in e.addresses], e.poll_host) for e in listen.from_config_dir({str(tmp_path)!r})])")
    result = subprocess.run(namespaces.exec_argv(namespaces.server, sys.executable, "-c", script), capture_output=True,
                            text=True, timeout=60, env=pack_env(), cwd=REPO)
    assert result.stdout.strip() == f"[(3493, ['{SERVER_ADDRESS}'], '127.0.0.1')]", result
