"""The lab's peers as seen from inside the cluster nodes.

The simulators listen on the machine's 127.0.0.1, which a node (its own
network namespace) cannot reach.  This process holds, in every node's
namespace, a TCP listener and a UDP socket on 127.0.0.1 at each lab port
(ports.json), and carries what arrives to the same port on the machine's
127.0.0.1: so the fencing configuration the PowerChain writes for the lab
(127.0.0.1:PORT) works unchanged inside the nodes, as pacemaker-fenced
runs the agents there.  The listeners belong to the nodes' named
namespaces, which outlive power cuts, so this process never restarts; a
port the lab adds later (a simulator started after the cluster) is
picked up when ports.json changes.
"""

import argparse
import json
import selectors
import signal
import socket
import time
from pathlib import Path

from infrapower.lab.cluster import host
from infrapower.lab.core import PORTS_FILE, Lab

UDP_IDLE = 120.0  # a client's upstream socket is dropped after this idle time
SEND_TIMEOUT = 2.0  # seconds a TCP peer may keep the relay waiting to write
COROSYNC_PORTS = range(5403, 5413)  # knet's ports inside the nodes: never relayed


class Relay:
    def __init__(self, lab, nodes):
        self.lab, self.nodes = lab, nodes
        self.selector = selectors.DefaultSelector()
        self.udp_clients = {}  # (listener fileno, client address) -> upstream socket
        self.udp_used = {}  # the same keys -> when last used (monotonic)
        self.stopping = False
        self.relayed = set()  # ports listened on in every node
        self.ports_stamp = None  # ports.json as last read
        self.listen_to_new_ports(strict=True)

    def listen_to_new_ports(self, strict=False):
        """Listen, in every node, on the lab's ports not relayed yet;
        read only when ports.json changed.  A port that cannot be bound
        raises when `strict` (at start: the cluster must not come up
        without it), else is said on the relay's log."""
        path = self.lab.path(PORTS_FILE)
        try:
            info = path.stat()
        except FileNotFoundError:
            return
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp == self.ports_stamp:
            return
        try:
            ports = json.loads(path.read_text())
        except (OSError, ValueError):
            return  # caught mid-write: read again next time
        self.ports_stamp = stamp
        new = sorted(
            {p for p in ports.values() if isinstance(p, int) and p not in COROSYNC_PORTS} - self.relayed
        )
        for node in self.nodes:
            with host.InNetns(host.node_ns(self.lab, node)):
                for port in new:
                    try:
                        self.listen(port)
                    except OSError as error:
                        if strict:
                            raise
                        print(f"relay: {node}: port {port}: {error}", flush=True)
        self.relayed.update(new)

    def listen(self, port):
        """A TCP listener and a UDP socket at 127.0.0.1:`port` in the
        current network namespace."""
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(("127.0.0.1", port))
            tcp.listen(16)
            udp.bind(("127.0.0.1", port))
        except OSError:
            tcp.close()
            udp.close()
            raise
        for sock, kind in ((tcp, "accept"), (udp, "udp-in")):
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, (kind, port))

    # -- TCP -----------------------------------------------------------------

    def accept(self, listener, port):
        try:
            client, _ = listener.accept()
        except BlockingIOError:
            return
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.settimeout(3)
        try:
            upstream.connect(("127.0.0.1", port))
        except OSError:
            client.close()
            upstream.close()
            return
        for sock in (client, upstream):
            sock.setblocking(False)
        self.selector.register(client, selectors.EVENT_READ, ("pipe", upstream))
        self.selector.register(upstream, selectors.EVENT_READ, ("pipe", client))

    def pipe(self, source, sink):
        try:
            data = source.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            try:
                # Bounded: a frozen node that stops reading must not stall
                # every other node's traffic.
                sink.settimeout(SEND_TIMEOUT)
                sink.sendall(data)
                sink.setblocking(False)
                return
            except OSError:
                pass
        for sock in (source, sink):
            try:
                self.selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()

    # -- UDP -----------------------------------------------------------------

    def udp_in(self, listener, port):
        try:
            data, client = listener.recvfrom(65536)
        except (BlockingIOError, InterruptedError):
            return
        key = (listener.fileno(), client)
        upstream = self.udp_clients.get(key)
        if upstream is None:
            upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            upstream.connect(("127.0.0.1", port))
            upstream.setblocking(False)
            self.udp_clients[key] = upstream
            self.selector.register(upstream, selectors.EVENT_READ, ("udp-back", (listener, client, key)))
        self.udp_used[key] = time.monotonic()
        try:
            upstream.send(data)
        except OSError:
            pass

    def drop_idle(self):
        """Every agent run comes from a new client port: forget old ones."""
        now = time.monotonic()
        for key, used in list(self.udp_used.items()):
            if now - used > UDP_IDLE:
                upstream = self.udp_clients.pop(key)
                del self.udp_used[key]
                self.selector.unregister(upstream)
                upstream.close()

    def udp_back(self, upstream, route):
        listener, client, key = route
        try:
            data = upstream.recv(65536)
        except OSError:
            self.selector.unregister(upstream)
            upstream.close()
            self.udp_clients.pop(key, None)
            self.udp_used.pop(key, None)
            return
        try:
            listener.sendto(data, client)
        except OSError:
            pass

    def run(self):
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        print("relay: listening", flush=True)
        while not self.stopping:
            self.drop_idle()
            self.listen_to_new_ports()
            for key, _ in self.selector.select(timeout=0.5):
                kind, extra = key.data
                if kind == "accept":
                    self.accept(key.fileobj, extra)
                elif kind == "pipe":
                    self.pipe(key.fileobj, extra)
                elif kind == "udp-in":
                    self.udp_in(key.fileobj, extra)
                elif kind == "udp-back":
                    self.udp_back(key.fileobj, extra)

    def _stop(self, signum, frame):
        self.stopping = True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", required=True)
    args = parser.parse_args(argv)
    lab = Lab(Path(args.lab))
    nodes = [n for n in host.NODES if n in lab.rack.topology()["servers"]]
    Relay(lab, nodes).run()


if __name__ == "__main__":
    main()
