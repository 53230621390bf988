"""A upsd that listens on IPv6 only (loopback and the server's ULA): the
built-in responder publishes the IPv6 address (AAAA), and a python-zeroconf
browser that speaks IPv6 (as Home Assistant's does) sees it, then its
removal on SIGTERM."""

import pytest

from conftest import SERVER_ADDRESS6, SERVER_HOST_NAME, Publisher, ZeroconfBrowser, server_launch, wait_for
from infrapower.publish.txt import parse_devices

NUT_IPV6 = True
TYPES = ("_nut._tcp", "_upsd._tcp")
DEADLINE = 40


@pytest.fixture(scope="module")
def browser(namespaces, tmp_path_factory):
    client = ZeroconfBrowser(namespaces, tmp_path_factory.mktemp("browser"))
    yield client
    client.stop()


def views(browser):
    found = {kind: None for kind in TYPES}
    for event in list(browser.events):
        kind = event.get("type", "").removesuffix(".local.")
        if kind in found and event["name"].startswith(SERVER_HOST_NAME):
            found[kind] = None if event["event"] == "removed" else event if event["event"] != "unresolved" else found[kind]
    return found


def test_ipv6_only_upsd_is_published_and_withdrawn(namespaces, nut_server, browser, tmp_path):
    publisher = Publisher(server_launch(namespaces), nut_server, tmp_path, "--publisher", "zeroconf")
    try:
        def seen():
            found = views(browser)
            devices = {"ups1": "ups", "pdu1": "pdu"}
            return all(view and parse_devices(view["txt"]) == devices for view in found.values()) and found

        for view in wait_for(seen, DEADLINE, "both services over IPv6").values():
            assert view["addresses"] == [SERVER_ADDRESS6] and view["server"] == f"{SERVER_HOST_NAME}.local."
    finally:
        assert publisher.stop() == 0
    wait_for(lambda: not any(views(browser).values()), DEADLINE, "both removals over IPv6")
    assert "Traceback" not in publisher.log()
