"""NUT's configuration syntax: parsed fully, written back without losing
what a person wrote."""

import pytest

from infrapower.chain.upsconf import ConfError, UpsConf, quote, split_line

SAMPLE = """\
# site power, kept by hand
maxretry = 3   # global directive

[ups1]
\tdriver = usbhid-ups     # the big one
\tport = auto
\tdesc = "UPS \\"one\\", rack A # not a comment"

[pdu1]
  driver=snmp-ups
  port = 10.0.0.5
  nolock
  community = "pass word"
"""


def test_sections_quoting_escapes_comments_and_flags():
    conf = UpsConf(SAMPLE, "ups.conf")
    assert conf.globals.get("maxretry") == "3"
    assert list(conf.sections) == ["ups1", "pdu1"]
    assert conf.sections["ups1"].get("desc") == 'UPS "one", rack A # not a comment'
    assert conf.sections["pdu1"].get("driver") == "snmp-ups"  # key=value without blanks
    assert conf.sections["pdu1"].get("community") == "pass word"
    flag = conf.sections["pdu1"].entry("nolock")
    assert flag.value is None and flag.line == 12
    assert conf.sections["ups1"].line == 4


def test_write_back_keeps_comments_order_and_untouched_lines():
    conf = UpsConf(SAMPLE, "ups.conf")
    conf.set("ups1", "parent", "main")
    conf.set("pdu1", "parent", "ups1:outlet2@nut2.example.com:3493")
    conf.set("ups1", "driver", "nutdrv_qx")
    conf.set("ups3", "parent", "main")
    text = conf.text()
    lines = text.splitlines()
    assert lines[0] == "# site power, kept by hand" and lines[1] == "maxretry = 3   # global directive"
    # The changed line keeps its indentation and its comment.
    assert lines[4] == "\tdriver = nutdrv_qx\t# the big one"
    assert lines[7] == "\tparent = main"  # appended after the section's last entry, same indent
    assert "  parent = ups1:outlet2@nut2.example.com:3493" in lines
    assert lines[-2:] == ["[ups3]", "\tparent = main"]
    again = UpsConf(text, "ups.conf")
    assert again.sections["ups1"].get("desc") == 'UPS "one", rack A # not a comment'
    assert again.sections["pdu1"].get("parent") == "ups1:outlet2@nut2.example.com:3493"
    assert [e.key for e in again.sections["pdu1"].entries] == ["driver", "port", "nolock", "community", "parent"]


def test_quote_round_trips():
    for value in ["plain", "with space", 'a "quoted" \\ word', "#hash", ""]:
        words, _ = split_line(f"key = {quote(value)}")
        assert words == ["key", "=", value]


@pytest.mark.parametrize(
    "text, line, message",
    [
        ('[a]\n\tdesc = "open\n', 2, "unterminated quote"),
        ("[a]\n[a]\n", 2, "section [a] again (first at line 1)"),
        ("[a]\n\tdesc = one two\n", 2, "expected `key = value`"),
        ("[]\n", 1, "empty section name"),
    ],
)
def test_syntax_errors_say_file_and_line(text, line, message):
    with pytest.raises(ConfError) as error:
        UpsConf(text, "/etc/nut/ups.conf")
    assert str(error.value).startswith(f"/etc/nut/ups.conf:{line}: ") and message in str(error.value)
