"""`infrapower publish` on a server where avahi-daemon runs (as on a Debian
server with avahi): it must publish through that daemon (auto), under
the daemon's host name, and a python-zeroconf browser on the other side
of the veth must see the devices, an added device, and the withdrawal on
SIGTERM."""

import pytest

from conftest import SERVER_ADDRESS, AvahiHost, Publisher, wait_for

AVAHI_HOST_NAME = "nutpub-avahi"
DEADLINE = 40


@pytest.fixture(scope="module")
def server_avahi(namespaces):
    host = AvahiHost(namespaces, namespaces.server, AVAHI_HOST_NAME)
    yield host
    host.stop()


@pytest.fixture(scope="module")
def publisher(server_avahi, nut_server, browser, tmp_path_factory):
    running = Publisher(server_avahi.argv(), nut_server, tmp_path_factory.mktemp("publisher"))
    yield running
    running.stop()


def sees(browser, devices):
    return browser.sees(AVAHI_HOST_NAME, devices)


def test_published_through_avahi_daemon(publisher, browser):
    found = wait_for(lambda: sees(browser, {"ups1": "ups", "pdu1": "pdu"}), DEADLINE,
                     "both services in the zeroconf browser")
    for view in found.values():
        assert view["server"] == f"{AVAHI_HOST_NAME}.local."
        assert SERVER_ADDRESS in view["addresses"] and not any(a.startswith("127.") for a in view["addresses"])
        assert view["port"] == 3493 and view["txt"]["protovers"] == "1.3" and view["txt"]["starttls"] == "no"
    publisher.wait_log("through avahi-daemon")


def test_a_device_added_reaches_the_browser(publisher, browser, nut_server):
    nut_server.add_device("ups3", "ups")
    wait_for(lambda: sees(browser, {"ups1": "ups", "pdu1": "pdu", "ups3": "ups"}), DEADLINE,
             "ups3 in the zeroconf browser")


def test_txt_updates_are_in_place(publisher, browser):
    """The update was announced as a change, never a withdrawal: browsers
    saw no gap."""
    ours = [event for event in browser.events if event.get("name", "").startswith(AVAHI_HOST_NAME)]
    assert ours and not any(event["event"] == "removed" for event in ours), ours


def test_an_avahi_daemon_restart_is_survived(publisher, browser, server_avahi, nut_server):
    assert server_avahi.run("avahi-daemon", "-k").returncode == 0
    wait_for(lambda: server_avahi.run("avahi-daemon", "--check").returncode != 0, DEADLINE, "avahi-daemon to stop")
    assert server_avahi.run("avahi-daemon", "-D", "--no-chroot", "--no-rlimits").returncode == 0
    publisher.wait_log("published again")
    nut_server.add_device("pdu4", "pdu")
    wait_for(lambda: sees(browser, {"ups1": "ups", "pdu1": "pdu", "ups3": "ups", "pdu4": "pdu"}), DEADLINE,
             "pdu4 in the zeroconf browser after avahi-daemon's restart")
    assert publisher.process.poll() is None


def test_sigterm_withdraws_through_avahi(publisher, browser):
    assert publisher.stop() == 0
    assert "Traceback" not in publisher.log()
    wait_for(lambda: not any(browser.views(AVAHI_HOST_NAME).values()), DEADLINE, "both removals in the zeroconf browser")
