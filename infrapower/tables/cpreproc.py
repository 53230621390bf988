"""The C preprocessor subset NUT's mapping tables need.

Conditional compilation (``#if``/``#ifdef``/``#ifndef``/``#elif``/``#else``
with ``defined``, ``!``, ``&&``, ``||``, comparisons and integer arithmetic)
against a caller-chosen set of predefined macros, and object-like
``#define`` macros expanded wherever the parser reads a value.
Function-like macros are only remembered by name.
"""

import re

from infrapower.tables.ctokens import CParseError, Token, int_literal, logical_lines, strip_comments, tokenize, unquote

__all__ = ["DEFAULT_CONFIG", "Preprocessor"]

# Build configuration assumed for every file: the plain static tables that a
# stock snmp-ups is built with, minus the DMF/lookup-function extensions.
# WITH_SNMP_LKP_FUN is forced off so that lookups backed by C functions fall
# back to their plain value->string pairs (the ``#else`` branches).
DEFAULT_CONFIG = (
    ("WITH_SNMP_LKP_FUN", "0"),
    ("WITH_SNMP_LKP_FUN_DUMMY", "0"),
    ("WITH_UNMAPPED_DATA_POINTS", "0"),
    ("WITH_DMFMIB", "0"),
    ("WITH_DMF_FUNCTIONS", "0"),
    ("WITH_DMF_LUA", "0"),
)


class Preprocessor:
    """Conditional compilation and object-like macro table.

    ``macros`` maps a name to its replacement token list.  Function-like
    macros are remembered by name only (``function_macros``) so that
    ``#ifdef`` sees them; their bodies are never expanded.
    """

    def __init__(self, predefined=DEFAULT_CONFIG, filename=None):
        self.filename = filename
        self.macros = {}
        self.function_macros = set()
        for name, value in predefined:
            self.macros[name] = tokenize(value)

    def define(self, name, value):
        self.macros[name] = tokenize(value) if isinstance(value, str) else list(value)

    def is_defined(self, name):
        return name in self.macros or name in self.function_macros

    # -- expansion --------------------------------------------------------

    def expand(self, tokens, keep=None, _active=()):
        """Expand object-like macros recursively.

        ``keep`` is an optional predicate; identifiers for which it returns
        true are left unexpanded (used for flag symbols).
        """
        out = []
        for tok in tokens:
            if (
                tok.kind == "ident"
                and tok.text in self.macros
                and tok.text not in _active
                and not (keep and keep(tok.text))
            ):
                out.extend(self.expand(self.macros[tok.text], keep, _active + (tok.text,)))
            else:
                out.append(tok)
        return out

    # -- #if expressions --------------------------------------------------

    def evaluate(self, tokens, line=None):
        """Value of a ``#if`` expression (undefined identifiers are 0)."""
        resolved = []
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok.kind == "ident" and tok.text == "defined":
                # defined NAME  |  defined ( NAME )
                j = i + 1
                paren = j < len(tokens) and tokens[j].is_punct("(")
                if paren:
                    j += 1
                if j >= len(tokens) or tokens[j].kind != "ident":
                    raise CParseError("malformed 'defined'", self.filename, line)
                resolved.append(Token("number", "1" if self.is_defined(tokens[j].text) else "0"))
                i = j + (2 if paren else 1)
                continue
            resolved.append(tok)
            i += 1
        expanded = [
            Token("number", "0") if t.kind == "ident" else t for t in self.expand(resolved)
        ]
        return _ExprParser(expanded, self.filename, line).parse()

    # -- driving ----------------------------------------------------------

    def run(self, text, include=None):
        """Return the compiled-in (non-directive) text, blank where dropped.

        ``include`` is an optional callback ``include(header_name, self)``
        invoked for ``#include "..."`` lines in active regions; it may
        preprocess the header with this same instance to pick up its macros.
        """
        text = strip_comments(text)
        out_lines = []
        # Each frame: [this_branch_active, some_branch_taken, parent_active]
        stack = []
        active = True
        for number, line in logical_lines(text):
            stripped = line.strip()
            if not stripped.startswith("#"):
                out_lines.append(line if active else "")
                continue
            out_lines.append("")
            directive = stripped[1:].strip()
            match = re.match(r"([A-Za-z_]+)\s*(.*)$", directive)
            if not match:
                continue  # null directive "#"
            keyword, rest = match.group(1), match.group(2).strip()
            if keyword in ("if", "ifdef", "ifndef"):
                if not active:
                    taken = False
                elif keyword == "if":
                    taken = bool(self.evaluate(tokenize(rest, number, self.filename), number))
                else:
                    name = rest.split()[0] if rest else ""
                    taken = self.is_defined(name) == (keyword == "ifdef")
                stack.append([taken, taken, active])
                active = active and taken
            elif keyword in ("elif", "else"):
                if not stack:
                    raise CParseError(f"#{keyword} without #if", self.filename, number)
                frame = stack[-1]
                parent = frame[2]
                if frame[1] or not parent:
                    frame[0] = False
                elif keyword == "else":
                    frame[0] = True
                else:
                    frame[0] = bool(self.evaluate(tokenize(rest, number, self.filename), number))
                frame[1] = frame[1] or frame[0]
                active = parent and frame[0]
            elif keyword == "endif":
                if not stack:
                    raise CParseError("#endif without #if", self.filename, number)
                active = stack.pop()[2]
            elif not active:
                continue
            elif keyword == "define":
                self._define_line(rest, number)
            elif keyword == "undef":
                name = rest.split()[0] if rest else ""
                self.macros.pop(name, None)
                self.function_macros.discard(name)
            elif keyword == "include":
                header = re.match(r'"([^"]+)"', rest)
                if header and include is not None:
                    include(header.group(1), self)
            elif keyword == "error":
                raise CParseError("#error " + rest, self.filename, number)
            # pragma, warning, line...: irrelevant to table contents
        if stack:
            raise CParseError("unterminated #if", self.filename)
        return "\n".join(out_lines)

    def _define_line(self, rest, line):
        match = re.match(r"([A-Za-z_]\w*)(\()?", rest)
        if not match:
            raise CParseError("malformed #define", self.filename, line)
        name = match.group(1)
        if match.group(2):  # "NAME(" with no space: function-like
            self.function_macros.add(name)
            self.macros.pop(name, None)
            return
        self.macros[name] = tokenize(rest[match.end():], line, self.filename)
        self.function_macros.discard(name)


class _ExprParser:
    """Recursive-descent evaluator for preprocessor integer expressions."""

    _BINARY = (
        ("||",), ("&&",), ("|",), ("^",), ("&",),
        ("==", "!="), ("<", ">", "<=", ">="), ("<<", ">>"),
        ("+", "-"), ("*", "/", "%"),
    )

    def __init__(self, tokens, filename, line):
        self.tokens = tokens
        self.pos = 0
        self.filename = filename
        self.line = line

    def fail(self, message):
        raise CParseError("#if expression: " + message, self.filename, self.line)

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self):
        value = self.ternary()
        if self.peek() is not None:
            self.fail(f"unexpected {self.peek().text!r}")
        return value

    def ternary(self):
        cond = self.binary(0)
        tok = self.peek()
        if tok is not None and tok.is_punct("?"):
            self.pos += 1
            yes = self.ternary()
            tok = self.peek()
            if tok is None or not tok.is_punct(":"):
                self.fail("expected ':'")
            self.pos += 1
            no = self.ternary()
            return yes if cond else no
        return cond

    def binary(self, level):
        if level == len(self._BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            tok = self.peek()
            if tok is None or tok.kind != "punct" or tok.text not in self._BINARY[level]:
                return left
            self.pos += 1
            right = self.binary(level + 1)
            left = self._apply(tok.text, left, right)

    def _apply(self, op, a, b):
        if op in ("/", "%") and b == 0:
            self.fail("division by zero")
        return {
            "||": lambda: int(bool(a) or bool(b)),
            "&&": lambda: int(bool(a) and bool(b)),
            "|": lambda: a | b, "^": lambda: a ^ b, "&": lambda: a & b,
            "==": lambda: int(a == b), "!=": lambda: int(a != b),
            "<": lambda: int(a < b), ">": lambda: int(a > b),
            "<=": lambda: int(a <= b), ">=": lambda: int(a >= b),
            "<<": lambda: a << b, ">>": lambda: a >> b,
            "+": lambda: a + b, "-": lambda: a - b,
            "*": lambda: a * b, "/": lambda: int(a / b), "%": lambda: a % b,
        }[op]()

    def unary(self):
        tok = self.peek()
        if tok is None:
            self.fail("unexpected end")
        self.pos += 1
        if tok.is_punct("!"):
            return int(not self.unary())
        if tok.is_punct("-"):
            return -self.unary()
        if tok.is_punct("+"):
            return self.unary()
        if tok.is_punct("~"):
            return ~self.unary()
        if tok.is_punct("("):
            value = self.ternary()
            close = self.peek()
            if close is None or not close.is_punct(")"):
                self.fail("expected ')'")
            self.pos += 1
            return value
        if tok.kind == "number":
            return int_literal(tok.text)
        if tok.kind == "char":
            return ord(unquote(tok.text) or "\0")
        self.fail(f"unexpected {tok.text!r}")
        return 0  # unreachable
