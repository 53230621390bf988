"""The lab's 3-node cluster: real corosync + Pacemaker nodes in their own
namespaces, fenced by the survivors through the pack's agents with the
configuration `infrapower chain --plan` wrote; a node's power is its rack
server's."""

import subprocess
import sys
import time

import pytest

from infrapower.lab import cluster
from infrapower.lab.core import wait_until

CLI = [sys.executable, "-m", "infrapower.cli.main"]


def _fenced(lab, via, node):
    """How many fencings of `node` the cluster has recorded (--verbose:
    every entry, not only the last success)."""
    history = cluster.run(lab, via, ["stonith_admin", "--history", node, "--verbose"]).stdout
    return history.count(f"reboot of {node} successful")


def _server_events(lab, start):
    return lab.rack.power_log()[start:]


def _off_at(events, kind, name):
    return next((e["t"] for e in events if e["kind"] == kind and e["name"] == name and e["state"] in ("off", "input_lost")), None)


def test_three_nodes_joined_each_its_own_machine(cluster_lab):
    view = cluster.members(cluster_lab, "nc1")
    assert sorted(view) == ["clc", "nc1", "nc2"]
    assert all(v["online"] and v["member"] for v in view.values())
    assert sum(v["dc"] for v in view.values()) == 1
    for node in cluster.NODES:
        assert cluster.run(cluster_lab, node, ["hostname"], check=True).stdout.strip() == node
        # PID 1 of the node is its init, not the machine's.
        comm = cluster.run(cluster_lab, node, ["cat", "/proc/1/cmdline"], check=True).stdout
        assert "node_init" in comm
    print(f"cluster up (3 nodes joined, a DC) in {cluster_lab.cluster_seconds:.1f} s")


def test_the_cli_runs_commands_inside_a_node(cluster_lab):
    result = subprocess.run(
        CLI + ["lab", "node", "--dir", str(cluster_lab.dir), "nc2", "--", "crm_node", "-n"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip() == "nc2", result.stderr
    wrong = subprocess.run(
        CLI + ["lab", "node", "--dir", str(cluster_lab.dir), "nc9", "--", "true"], capture_output=True, text=True, timeout=60
    )
    assert wrong.returncode == 1 and "no cluster node named 'nc9'" in wrong.stderr and "Traceback" not in wrong.stderr
    status = subprocess.run(CLI + ["lab", "status", "--dir", str(cluster_lab.dir)], capture_output=True, text=True, timeout=60)
    assert "cluster: clc running, nc1 running, nc2 running" in status.stdout, status.stdout + status.stderr
    bad = subprocess.run(
        CLI + ["lab", "fault", "--dir", str(cluster_lab.dir), "node", "nc1", "explode"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "no node fault 'explode'" in bad.stderr and "Traceback" not in bad.stderr
    # `lab up --cluster` over a running lab: one line, nothing started twice
    again = subprocess.run(
        CLI + ["lab", "up", "--dir", str(cluster_lab.dir), "--cluster"], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 1 and "already up" in again.stderr and "Traceback" not in again.stderr
    assert all(info["running"] for info in cluster.status(cluster_lab).values())


def test_lab_up_cluster_is_what_the_fixture_ran():
    """`infrapower lab up --cluster` = the rack (tests/lab/test_cli), then
    lab_cluster.start, which started this package's cluster."""
    from infrapower.cli.main import build_parser

    args = build_parser().parse_args(["lab", "up", "--cluster"])
    assert args.cluster and not args.no_fencing
    assert build_parser().parse_args(["lab", "up", "--cluster", "--no-fencing"]).no_fencing


def test_the_lab_is_reachable_from_inside_the_nodes(cluster_lab):
    """upsd, the SNMP PDUs and the BMCs at the machine's addresses, as the
    plan's devices name them."""
    upsd = cluster_lab.port("upsd")
    status = cluster.run(cluster_lab, "nc1", ["upsc", f"ups1@127.0.0.1:{upsd}", "ups.status"], check=True)
    assert status.stdout.strip() == "OL"
    agent = cluster.run(
        cluster_lab, "clc",
        ["/usr/sbin/fence_snmp_pdu", "--ip=127.0.0.1", f"--ipport={cluster_lab.port('snmp:pdu1')}",
         "--community=private", "--snmp-version=1", "--plug=2", "--action=status"],
    )
    assert agent.returncode == 0 and "ON" in agent.stdout.upper(), agent.stdout + agent.stderr


def test_the_relay_carries_a_port_the_lab_adds_later(cluster_lab):
    """A peer started after the cluster (its port written to ports.json)
    is reachable from inside the nodes at the same 127.0.0.1:PORT."""
    import json
    import socket
    import threading

    from infrapower.lab.core import PORTS_FILE

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"late peer\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    probe = f"import socket; print(socket.create_connection(('127.0.0.1', {port}), 5).recv(64).decode().strip())"
    try:
        cluster_lab.set_port("test:late-peer", port)
        for node in cluster.NODES:
            wait_until(
                lambda node=node: cluster.run(cluster_lab, node, ["python3", "-c", probe], timeout=20).stdout.strip()
                == "late peer",
                time.monotonic() + 30,
                f"port {port} relayed into {node}",
            )
    finally:
        ports = cluster_lab.ports()
        ports.pop("test:late-peer", None)
        cluster_lab.path(PORTS_FILE).write_text(json.dumps(ports, indent=1, sort_keys=True))
        stop.set()
        thread.join(5)
        server.close()


def test_the_plan_configured_both_feeds_in_one_level_and_the_bmc_in_another(cluster_lab):
    levels = cluster.run(cluster_lab, "clc", ["pcs", "stonith", "level", "config"], check=True).stdout
    assert "Level 1 - chain-clc-pdu1-1 chain-clc-nut" in levels.replace(",", " ")
    assert "Level 2 - chain-clc-ipmi" in levels
    constraints = cluster.run(cluster_lab, "clc", ["cibadmin", "-Q", "-o", "constraints"], check=True).stdout
    assert 'rsc="chain-clc-nut"' in constraints and 'node="clc"' in constraints
    assert not any("password=" in line and "password_script" not in line for line in cluster_lab.fencing_commands)


@pytest.mark.parametrize("node,kind", [("nc2", "crash"), ("nc1", "hang"), ("clc", "isolate")])
def test_a_failed_node_is_fenced_by_the_survivors_and_rejoins(cluster_lab, node, kind):
    lab = cluster_lab
    survivor = next(n for n in cluster.NODES if n != node)
    outlets = list(lab.rack.topology()["servers"][node]["psus"].values())
    start = len(lab.rack.power_log())
    fenced_before = _fenced(lab, survivor, node)
    faulted = time.time()
    cluster.fault(lab, node, kind)

    def fenced():
        events = _server_events(lab, start)
        return _off_at(events, "server", node)

    off = wait_until(fenced, time.monotonic() + 60, f"{node} fenced ({kind})")
    events = _server_events(lab, start)
    # Both feeds were cut (one level: fence_snmp_pdu and fence_nut).
    for outlet in outlets:
        assert _off_at(events, "outlet", outlet) is not None, f"{outlet} never off: {events}"
    print(f"{kind} {node}: fence cut its power {off - faulted:.1f} s after the fault")

    wait_until(lambda: _fenced(lab, survivor, node) > fenced_before, time.monotonic() + 60, f"{node}'s fencing done")
    assert any(e["node"] == node and e["event"] == "boot" and e["t"] > off for e in _boot_log(lab))
    cluster.wait_ready(lab, time.monotonic() + 90)


def _boot_log(lab):
    def booted():
        log = cluster.power_log(lab)
        return log if log else None

    return wait_until(booted, time.monotonic() + 30, "cluster power log")


def test_the_bmc_level_fences_when_a_pdu_does_not_answer(cluster_lab):
    """Level 1 needs both PDUs; with PDU1 silent it fails, and Pacemaker
    falls back to level 2: fence_ipmi_psu powers the chassis off."""
    from infrapower.lab import pdus

    lab, node = cluster_lab, "nc2"
    start = len(lab.rack.power_log())
    fenced_before = _fenced(lab, "clc", node)
    pdus.set_silent(lab, "pdu1", True)
    try:
        cluster.fault(lab, node, "crash")
        wait_until(lambda: _off_at(_server_events(lab, start), "server", node), time.monotonic() + 120, f"{node} fenced")
        events = _server_events(lab, start)
        # PDU1's outlet never went off: the chassis did.
        assert _off_at(events, "outlet", "pdu1:3") is None
        wait_until(lambda: _fenced(lab, "clc", node) > fenced_before, time.monotonic() + 120, f"{node}'s fencing done")
    finally:
        pdus.set_silent(lab, "pdu1", False)
    cluster.wait_ready(lab, time.monotonic() + 90)
