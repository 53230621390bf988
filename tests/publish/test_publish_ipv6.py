"""A upsd that listens on IPv6 only (loopback and the server's ULA): the
built-in responder publishes the IPv6 address (AAAA), and a python-zeroconf
browser that speaks IPv6 (as Home Assistant's does) sees it, then its
removal on SIGTERM."""

from conftest import SERVER_ADDRESS6, SERVER_HOST_NAME, Publisher, server_launch, wait_for

NUT_IPV6 = True
DEADLINE = 40


def test_ipv6_only_upsd_is_published_and_withdrawn(namespaces, nut_server, browser, tmp_path):
    publisher = Publisher(server_launch(namespaces), nut_server, tmp_path, "--publisher", "zeroconf")
    try:
        seen = wait_for(lambda: browser.sees(SERVER_HOST_NAME, {"ups1": "ups", "pdu1": "pdu"}), DEADLINE,
                        "both services over IPv6")
        for view in seen.values():
            assert view["addresses"] == [SERVER_ADDRESS6] and view["server"] == f"{SERVER_HOST_NAME}.local."
    finally:
        assert publisher.stop() == 0
    wait_for(lambda: not any(browser.views(SERVER_HOST_NAME).values()), DEADLINE, "both removals over IPv6")
    assert "Traceback" not in publisher.log()
