"""A seeded mutation fuzzer over the SNMP client's answer parser (the
accept path of v1, v2c and v3 at every security level): nothing a peer
sends may raise, and no mutated packet of an authenticated seed may be
taken (the HMAC covers every byte, so accepted means unchanged)."""

import copy
import os
import random
import time

import pytest
from snmp_forge import (NOT_IN_TIME_WINDOW, OUTLET, UNKNOWN_ENGINE_ID, V1, V2C, accept_community, accept_v3, client,
                        community_message, forged_report, pdu, v3)

from infrapower.snmp.session import _Dropped

MSG, REQ = 777, 776
CASES_PER_SEED = int(os.environ.get("SNMP_FUZZ_CASES", "700"))
SEED = 20240610


def mutate(data, rng, corpus):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(8)
        at = rng.randrange(len(data)) if data else 0
        if choice == 0 and data:  # flip a bit
            data[at] ^= 1 << rng.randrange(8)
        elif choice == 1 and data:  # any byte
            data[at] = rng.randrange(256)
        elif choice == 2:  # insert bytes
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif choice == 3 and data:  # delete a range
            del data[at : at + rng.randint(1, 16)]
        elif choice == 4:  # truncate
            del data[at:]
        elif choice == 5 and data:  # a BER length that lies: the byte after a tag
            tags = [i for i, byte in enumerate(data[:-1]) if byte in (0x02, 0x04, 0x06, 0x30, 0xA2, 0xA8)]
            if tags:
                data[rng.choice(tags) + 1] = rng.choice((0x00, 0x7F, 0x80, 0x81, 0x84, 0xFF, rng.randrange(256)))
        elif choice == 6 and data:  # duplicate a range
            end = min(len(data), at + rng.randint(1, 32))
            data[at:at] = data[at:end]
        else:  # splice another seed's tail
            other = rng.choice(corpus)
            data = data[:at] + other[rng.randrange(len(other)) :]
    return bytes(data)


def seeds():
    """(name, session factory, packet, accept(session, data), authenticated)."""
    found = []
    for level, auth, priv in (("noAuthNoPriv", None, None), ("authNoPriv", "SHA", None), ("authPriv", "SHA-256", "AES"),
                              ("authPriv", "MD5", "DES"), ("authPriv", "SHA-512", "AES-256")):
        def factory(level=level, auth=auth or "MD5", priv=priv or "DES"):
            return client(level=level, auth=auth, priv=priv)

        live = factory()
        packet = v3(live, MSG, pdu("response", REQ, [(OUTLET, 1)]), level=level, auth=auth or "MD5", priv=priv or "DES")
        found.append((f"v3 {level} {auth} {priv}", factory, packet, lambda s, d: accept_v3(s, d, MSG, REQ), level != "noAuthNoPriv"))
        if level == "authNoPriv":
            report = v3(live, MSG, pdu("report", REQ, [(NOT_IN_TIME_WINDOW, 1)]), level=level, auth=auth)
            found.append(("v3 authenticated report", factory, report, lambda s, d: accept_v3(s, d, MSG, REQ), True))
        live.close()
    live = client()
    request = v3(live, MSG, pdu("get", REQ, []))
    live.close()
    discovery = forged_report(request, UNKNOWN_ENGINE_ID)
    found.append(("v3 discovery report", lambda: client(confirmed=False), discovery,
                  lambda s, d: accept_v3(s, d, MSG, REQ, discovering=True), False))
    for proto, version in ((V1, "1"), (V2C, "2c")):
        packet = community_message(pdu("response", REQ, [(OUTLET, 1), (OUTLET + "0", "name")], proto=proto), proto=proto)
        found.append((f"v{version}", lambda version=version: client(version=version), packet,
                      lambda s, d: accept_community(s, d, REQ, (OUTLET, OUTLET + "0")), False))
    return found


SEEDS = seeds()


@pytest.mark.parametrize("name, factory, packet, accept, authenticated", SEEDS, ids=[seed[0] for seed in SEEDS])
def test_mutated_answers_never_raise_and_authenticated_ones_are_never_taken(name, factory, packet, accept, authenticated):
    rng = random.Random(f"{SEED}-{name}")
    corpus = [seed[2] for seed in SEEDS]
    live = factory()
    # The same session without Session.accept's catch-all, to see what the
    # parser itself raises.
    unwrapped = copy.copy(live)
    unwrapped.accept = lambda data, inner: inner(data)
    pristine = copy.copy(live._usm) if live._usm else None
    assert accept(live, packet) is not None  # the seed itself is valid
    taken = dropped = 0
    started = time.monotonic()
    try:
        for case in range(CASES_PER_SEED):
            data = mutate(packet, rng, corpus)
            if pristine is not None:
                live._usm, unwrapped._usm = copy.copy(pristine), copy.copy(pristine)
            try:
                result = accept(unwrapped, data)
            except _Dropped:
                result = None  # what the session's catch-all is for: a drop, never a crash
            except Exception as error:  # a parser bug the catch-all would hide
                pytest.fail(f"{name} case {case}: {type(error).__name__}: {error} on {data.hex()}")
            assert accept(live, data) == result, f"{name} case {case}: the guarded path disagrees"
            if result is None:
                dropped += 1
                continue
            taken += 1
            if authenticated:
                assert data == packet, f"{name} case {case}: a mutated authenticated answer was taken: {data.hex()}"
    finally:
        live.close()
    assert dropped > CASES_PER_SEED // 2
    assert time.monotonic() - started < 10 * max(1, CASES_PER_SEED // 700)
