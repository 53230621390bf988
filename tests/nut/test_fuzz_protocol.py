"""Fuzzing the NUT client with what a broken or hostile upsd could send:
mutated replies, garbage bytes, over-long lines, silence, hang-ups.  Every
operation fence_nut uses ends in NutError or FenceError (one line for the
user), never another exception, and within its deadline.  No lab needed:
the peer is a socketpair."""

import random
import socket
import threading
import time

import pytest

from infrapower.fence import FenceError
from infrapower.nut.client import Deadline, NutClient, NutError, NutSettings
from infrapower.nut.outlets import NutOutlets

CASES = 1000
SEED = 1129
TIMEOUT = 0.03

VALID = [
    b'VAR tpdu outlet.1.status "on"\n',
    b'VAR tpdu outlet.1.status "off"\n',
    b"OK\n",
    b"OK TRACKING 1bd31808-cb49-4aec-9d75-d056e6f018d2\n",
    b"SUCCESS\n",
    b"PENDING\n",
    b"BEGIN LIST VAR tpdu\n" b'VAR tpdu outlet.1.status "on"\n' b'VAR tpdu outlet.1.desc "nc1"\n' b"END LIST VAR tpdu\n",
    b"BEGIN LIST CMD tpdu\nCMD tpdu outlet.1.load.off\nEND LIST CMD tpdu\n",
    b'BEGIN LIST UPS\nUPS tpdu "test"\nEND LIST UPS\n',
    b"BEGIN LIST RW tpdu\nEND LIST RW tpdu\n",
    b"ERR ACCESS-DENIED\n",
    b"ERR DATA-STALE\n",
    b"ERR UNKNOWN-UPS\n",
]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if choice < 0.3 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.5 and data:
            del data[rng.randrange(len(data)) :]
        elif choice < 0.7:
            position = rng.randrange(len(data) + 1)
            data[position:position] = bytes(rng.choice([b'"', b"\\", b" ", b"\n", b"\r", b"\x00", b"\xff", b"BEGIN ", b"END "]))
        else:
            data += rng.choice(VALID)
    return bytes(data)


def reply(rng):
    kind = rng.random()
    if kind < 0.6:
        return mutate(rng, rng.choice(VALID))
    if kind < 0.7:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    if kind < 0.75:
        return b"x" * 70000  # over-long, no line end
    if kind < 0.95:
        return None  # hang up
    return b""  # silence: costs a whole TIMEOUT


def peer(sock, rng):
    """Answer each request line with something random until the client
    goes away or the peer hangs up."""
    buffer = b""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                _, buffer = buffer.split(b"\n", 1)
                answer = reply(rng)
                if answer is None:
                    sock.shutdown(socket.SHUT_RDWR)
                    return
                sock.sendall(answer)
    except OSError:
        return
    finally:
        sock.close()


OPERATIONS = [
    lambda c, o: c.list_ups(),
    lambda c, o: c.list_var("tpdu"),
    lambda c, o: c.list_cmd("tpdu"),
    lambda c, o: c.get_var("tpdu", "outlet.1.status"),
    lambda c, o: c.get_tracking("1bd31808"),
    lambda c, o: c.instcmd("tpdu", "outlet.1.load.off"),
    lambda c, o: c.set_tracking(True),
    lambda c, o: c.login("fencer", "secret"),
    lambda c, o: o.status(["tpdu:1"]),
    lambda c, o: o.listing(),
    lambda c, o: o.check("tpdu:1", False),
    lambda c, o: o.switch("tpdu:1", False),
    lambda c, o: o.monitor(),
]


def test_hostile_replies_end_in_one_line_errors():
    rng = random.Random(SEED)
    outcomes = {"ok": 0, "error": 0}
    for case in range(CASES):
        ours, theirs = socket.socketpair()
        thread = threading.Thread(target=peer, args=(theirs, random.Random(rng.random())), daemon=True)
        thread.start()
        client = NutClient(NutSettings("127.0.0.1", 3493, timeout=TIMEOUT))
        client._sock = ours
        outlets = NutOutlets(client, "fencer", command_timeout=TIMEOUT)
        operation = rng.choice(OPERATIONS)
        started = time.monotonic()
        try:
            operation(client, outlets)
            outcomes["ok"] += 1
        except (NutError, FenceError) as error:
            assert "\n" not in str(error), (case, str(error))
            outcomes["error"] += 1
        finally:
            client.close()
        # A deadline per exchange; an operation makes a few (TRACKING polls
        # run for command_timeout).
        assert time.monotonic() - started < TIMEOUT * 10 + 1, case
        thread.join(1)
    assert outcomes["error"] > CASES / 2, outcomes


def test_bytes_after_ok_starttls_are_never_read():
    ours, theirs = socket.socketpair()
    theirs.sendall(b'OK STARTTLS\nVAR tpdu outlet.1.status "off"\n')
    client = NutClient(NutSettings("127.0.0.1", 3493, timeout=TIMEOUT))
    client._sock = ours
    with pytest.raises(NutError, match="after OK STARTTLS"):
        client._starttls(Deadline(2.0), None, None)  # loading the CAs alone takes ~30 ms
    theirs.close()
    client.close()
