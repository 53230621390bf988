"""infrapower.snmp.compat on both pysnmp lines the pack runs on: Debian
12's python3-pysnmp4 4.4 (/usr/bin/python3, the Debian package's agents)
and PyPI's 7.x (the lab's environment).  The same requests must encode to
the same bytes and decode back the same on each; an interpreter without
pysnmp is skipped."""

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INTERPRETERS = ("/usr/bin/python3", "/usr/lib/fence-agents-infrapower/lab/bin/python")

# Encode a GET (v1 and v2c) and a GETBULK, decode them back, read every
# accessor the client uses; print what came out.
ROUND_TRIP = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import pysnmp
from pyasn1.codec.ber import decoder, encoder
from infrapower.snmp.compat import message_version, protocol

out = {"pysnmp": pysnmp.__version__}
for version in ("1", "2c"):
    proto = protocol(version)
    pdu = proto.GetBulkRequestPDU() if version == "2c" else proto.GetRequestPDU()
    api_pdu = proto.apiBulkPDU if version == "2c" else proto.apiPDU
    api_pdu.set_defaults(pdu)
    api_pdu.set_request_id(pdu, 4242)
    if version == "2c":
        proto.apiBulkPDU.set_non_repeaters(pdu, 0)
        proto.apiBulkPDU.set_max_repetitions(pdu, 7)
    api_pdu.set_varbinds(pdu, [("1.3.6.1.2.1.1.2.0", proto.Null(""))])
    message = proto.Message()
    proto.apiMessage.set_defaults(message)
    proto.apiMessage.set_community(message, "private")
    proto.apiMessage.set_pdu(message, pdu)
    wire = encoder.encode(message)
    back, _ = decoder.decode(wire, asn1Spec=proto.Message())
    got = proto.apiMessage.get_pdu(back)
    out[version] = {
        "wire": wire.hex(),
        "msg_version": message_version(wire),
        "community": bytes(proto.apiMessage.get_community(back)).decode(),
        "request_id": int(proto.apiPDU.get_request_id(got)),
        # a GETBULK's error fields hold non-repeaters and max-repetitions
        "fields": ([int(proto.apiBulkPDU.get_non_repeaters(got)), int(proto.apiBulkPDU.get_max_repetitions(got))]
                   if version == "2c" else [int(proto.apiPDU.get_error_status(got)), int(proto.apiPDU.get_error_index(got))]),
        "oids": [str(oid) for oid, _ in proto.apiPDU.get_varbinds(got)],
    }
print(json.dumps(out))
"""


def _round_trip(python):
    if not Path(python).exists():
        pytest.skip(f"{python} is not installed")
    has_pysnmp = subprocess.run([python, "-c", "import pysnmp.proto.api"], capture_output=True, timeout=60)
    if has_pysnmp.returncode:
        pytest.skip(f"{python} has no pysnmp")
    run = subprocess.run([python, "-c", ROUND_TRIP, str(REPO)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("python", INTERPRETERS)
def test_compat_encodes_and_decodes_with_7x_names(python):
    out = _round_trip(python)
    for version, wire_version in (("1", 0), ("2c", 1)):
        assert out[version]["msg_version"] == wire_version
        assert out[version]["community"] == "private"
        assert out[version]["request_id"] == 4242
        assert out[version]["oids"] == ["1.3.6.1.2.1.1.2.0"]
        assert out[version]["fields"] == ([0, 0] if version == "1" else [0, 7])


def test_both_pysnmp_lines_put_the_same_bytes_on_the_wire():
    outs = [_round_trip(python) for python in INTERPRETERS]
    assert {out["pysnmp"].split(".")[0] for out in outs} >= {"4", "7"} or pytest.skip("only one pysnmp line here")
    assert outs[0]["1"]["wire"] == outs[1]["1"]["wire"]
    assert outs[0]["2c"]["wire"] == outs[1]["2c"]["wire"]
