"""The TXT record and the LISTEN reading, without any network: the
255-byte strings, the summary when devices do not fit, the loopback-only
refusal (no root, no peer)."""

import ipaddress
import subprocess
import sys

import pytest

# Bound at collection, while "conftest" is this directory's: the whole suite
# loads every directory's conftest.py under that one module name.
from conftest import REPO, pack_env
from infrapower.errors import ConfigError
from infrapower.publish import listen, txt
from infrapower.publish.upsd import UpsdFacts


def facts(devices):
    return UpsdFacts(tuple(devices), "1.3", "2.8.0", "no")


def sizes(record):
    return [len(f"{key}={value}".encode()) for key, value in record]


def test_a_small_upsd_lists_every_device():
    record = txt.build(facts([("pdu1", "pdu"), ("ups1", "ups")]))
    assert record == [("txtvers", "1"), ("protovers", "1.3"), ("nutvers", "2.8.0"), ("starttls", "no"),
                      ("devices", "2"), ("types", "pdu:1,ups:1"), ("dev0", "pdu1:pdu,ups1:ups")]
    assert txt.parse_devices(dict(record)) == {"pdu1": "pdu", "ups1": "ups"}


def test_many_devices_split_within_255_bytes_and_summarised_beyond_the_budget():
    devices = [(f"ups-number-{index:04d}", "ups") for index in range(300)]
    record = txt.build(facts(devices))
    values = dict(record)
    assert max(sizes(record)) <= txt.STRING_LIMIT
    assert sum(size + 1 for size in sizes(record)) <= txt.RECORD_BUDGET
    listed = txt.parse_devices(values)
    assert len([key for key in values if key.startswith("dev") and key != "devices"]) > 1
    assert values["devices"] == "300" and values["types"] == "ups:300"
    assert int(values["more"]) == 300 - len(listed) > 0
    assert all(name in dict(devices) for name in listed)


def test_a_name_that_fits_no_string_is_counted_not_listed():
    record = dict(txt.build(facts([("x" * 300, "ups"), ("ups1", "ups")])))
    assert txt.parse_devices(record) == {"ups1": "ups"} and record["more"] == "1"


def test_separators_in_a_type_are_replaced():
    record = dict(txt.build(facts([("ups1", "a,b:c d")])))
    assert txt.parse_devices(record) == {"ups1": "a_b_c_d"}


def test_instance_names_fit_one_label():
    assert txt.instance_name("host", 3493, False) == "host"
    assert txt.instance_name("h" * 80, 3493, True).endswith(" (3493)")
    assert len(txt.instance_name("h" * 80, 3493, True).encode()) <= txt.MAX_LABEL


@pytest.mark.parametrize("text", ["LISTEN 127.0.0.1 3493\n", "", "LISTEN ::1\nLISTEN localhost 3493\n"])
def test_loopback_only_is_refused(tmp_path, text):
    (tmp_path / "upsd.conf").write_text(text)
    with pytest.raises(ConfigError, match="loopback only"):
        listen.from_config_dir(tmp_path)


def test_listen_addresses_and_ports(tmp_path):
    (tmp_path / "upsd.conf").write_text("LISTEN 127.0.0.1\nLISTEN 192.0.2.10 3493\nLISTEN 198.51.100.7 3494\n")
    endpoints = listen.from_config_dir(tmp_path)
    assert [(e.port, e.addresses, e.poll_host) for e in endpoints] == [
        (3493, (ipaddress.ip_address("192.0.2.10"),), "127.0.0.1"),
        (3494, (ipaddress.ip_address("198.51.100.7"),), "198.51.100.7")]


def test_upsd_option_forms():
    own = [address for address in listen.host_addresses() if listen.publishable(address)]
    for address in own[:2]:  # this host's: what publish announces
        shown = f"[{address}]" if address.version == 6 else str(address)
        assert listen.from_upsd_option(shown)[0].port == 3493
        assert listen.from_upsd_option(f"{shown}:3500")[0].addresses == (address,)
    # Another machine's upsd would be announced under this host's name.
    for other in ("198.51.100.1", "[2001:db8::1]:3500"):
        with pytest.raises(ConfigError, match="not an address of this host"):
            listen.from_upsd_option(other)
    with pytest.raises(ConfigError, match="TCP port"):
        listen.from_upsd_option("192.0.2.1:99999")
    with pytest.raises(ConfigError, match="loopback only"):
        listen.from_upsd_option("127.0.0.1:3493")


def publish_cli(*argv, prefix=()):
    return subprocess.run([*prefix, sys.executable, "-m", "infrapower.cli.main", "publish", *argv],
                          capture_output=True, text=True, timeout=60, env=pack_env(), cwd=REPO)


def one_line_error(result, wanted):
    assert result.returncode == 1, result
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("infrapower publish: ") and wanted in result.stderr, result.stderr


def test_cli_loopback_only_is_one_line_and_exit_1(tmp_path):
    (tmp_path / "upsd.conf").write_text("LISTEN 127.0.0.1 3493\n")
    one_line_error(publish_cli("--config-dir", str(tmp_path)), "loopback only")


def test_cli_missing_upsd_conf_is_one_line(tmp_path):
    one_line_error(publish_cli("--config-dir", str(tmp_path / "none")), "upsd.conf")


def test_cli_a_config_dir_it_may_not_read_is_one_line(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    nobody = ("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups")
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to run as nobody")
    if subprocess.run([*nobody, sys.executable, "-c", "pass"], capture_output=True, timeout=60).returncode:
        pytest.skip(f"nobody cannot run {sys.executable}")
    private = tmp_path / "private"  # under pytest's tmp_path, which only root may enter
    private.mkdir()
    (private / "upsd.conf").write_text("LISTEN 0.0.0.0\n")
    one_line_error(publish_cli("--config-dir", str(private), prefix=nobody), "Permission denied: run as root")


def test_cli_avahi_asked_for_without_a_daemon_is_one_line(tmp_path):
    """In a mount namespace whose /run/avahi-daemon is empty: no daemon."""
    import os
    import shutil

    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root for a private mount namespace")
    (tmp_path / "upsd.conf").write_text("LISTEN 192.0.2.1 3493\n")
    os.makedirs("/run/avahi-daemon", exist_ok=True)
    prefix = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
              'mount -t tmpfs tmpfs /run/avahi-daemon && exec "$@"', "sh")
    one_line_error(publish_cli("--config-dir", str(tmp_path), "--publisher", "avahi", prefix=prefix),
                   "no avahi-daemon runs here")


def test_cli_a_host_named_localhost_is_refused(tmp_path):
    """The built-in responder would answer for localhost.local, which
    clients resolve to themselves (NUT issue 2231): one line, exit 1."""
    import os
    import shutil

    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root for a UTS namespace")
    own = [address for address in listen.host_addresses(4) if listen.publishable(address)]
    if not own:
        pytest.skip("this host has no non-loopback IPv4 address")
    prefix = ("unshare", "--uts", "sh", "-c", 'hostname localhost && exec "$@"', "sh")
    one_line_error(publish_cli("--upsd", str(own[0]), "--publisher", "zeroconf", prefix=prefix),
                   "this host is named localhost")


def test_polls_sooner_while_a_new_device_type_is_unknown():
    import threading
    import time

    from infrapower.publish import service

    class Named:  # what Publication reads of a publisher before any poll
        host_name = "host.local"

    endpoint = listen.Endpoint(3493, (ipaddress.ip_address("192.0.2.1"),), "192.0.2.1")
    publication = service.Publication(service.Options((endpoint,), interval=10.0), Named(), threading.Event())
    publication.facts, publication.changed_at = facts([("ups1", "unknown")]), time.monotonic()
    assert publication.wait_seconds() == service.SETTLE_INTERVAL
    publication.changed_at -= service.SETTLE_SECONDS  # a driver that stays away: back to the interval
    assert publication.wait_seconds() == 10.0
    publication.facts, publication.changed_at = facts([("ups1", "ups")]), time.monotonic()
    assert publication.wait_seconds() == 10.0
