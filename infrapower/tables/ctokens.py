"""C tokens for the mapping-table reader: comments, continuations, literals.

The lowest layer of infrapower.tables.cparse: it turns C text into tokens and
reads the values of literals; it knows nothing of macros or structures.
``CParseError`` lives here because every layer above raises it.
"""

import re

from infrapower.errors import InfrapowerError

__all__ = ["CParseError", "Token", "int_literal", "logical_lines", "strip_comments", "tokenize", "unquote"]


class CParseError(InfrapowerError, ValueError):
    """The input is outside the supported C subset, or malformed."""

    def __init__(self, message, filename=None, line=None):
        where = ""
        if filename:
            where = filename + (f":{line}" if line else "") + ": "
        super().__init__(where + message)


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[uUlLfF]*)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<punct>\|\||&&|==|!=|<=|>=|<<|>>|->|\#\#|[-+*/%&|^!~<>=?:;,.(){}\[\]\#])
    """,
    re.VERBOSE | re.DOTALL,
)


class Token:
    """One C token: ``kind`` is string/char/number/ident/punct."""

    __slots__ = ("kind", "text", "line")

    def __init__(self, kind, text, line=0):
        self.kind = kind
        self.text = text
        self.line = line

    def __repr__(self):
        return f"Token({self.kind}, {self.text!r})"

    def is_punct(self, text):
        return self.kind == "punct" and self.text == text


def tokenize(text, line=0, filename=None):
    """Split comment-free C text into tokens (whitespace dropped)."""
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise CParseError(f"unexpected character {text[pos]!r}", filename, line)
        kind = match.lastgroup
        if kind != "ws":
            tokens.append(Token(kind, match.group(), line))
        line += match.group().count("\n")
        pos = match.end()
    return tokens


def strip_comments(text):
    """Replace comments by a space (keeping newlines so line numbers hold).

    String and character literals are respected, so an OID or URL inside a
    string never starts a comment.
    """
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(" " + "\n" * text.count("\n", i, end))
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def logical_lines(text):
    """Yield (first_line_number, line) with backslash continuations joined."""
    pending, start = [], 1
    for number, raw in enumerate(text.split("\n"), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        yield start, " ".join(pending)
        pending = []
    if pending:
        yield start, " ".join(pending)


def unquote(literal):
    """Value of one C string literal token (simple escapes only)."""
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "0": "\0"}.get(m.group(1), m.group(1)), body)


def int_literal(text):
    """Value of a C integer literal: 0x hex, leading-0 octal, decimal; u/l suffixes dropped."""
    return int(text.rstrip("uUlL"), 0) if not re.match(r"^0\d", text) else int(text.rstrip("uUlL"), 8)
