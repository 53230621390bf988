"""Just enough C to read NUT's snmp-ups mapping tables (``drivers/*-mib.c``).

This is not a C compiler front end.  It understands the small, regular subset
those files are written in:

* comments, line continuations, string-literal concatenation;
* object-like ``#define`` macros (OID prefixes, ``DO_OFF``-style values),
  expanded wherever a value is read;
* conditional compilation (``#if``/``#ifdef``/``#ifndef``/``#elif``/``#else``)
  with ``defined``, ``!``, ``&&``, ``||``, comparisons and integer arithmetic,
  evaluated against a caller-chosen set of predefined macros;
* initialisers of ``info_lkp_t``, ``snmp_info_t`` and ``mib2nut_info_t``
  objects, written either as plain braces ``{1, "on", NULL, NULL}`` or
  through NUT's helper macros (``info_lkp_default(1, "on")``,
  ``snmp_info_default(...)``, ``*_sentinel``).

Flag fields are deliberately *not* expanded to numbers: NUT renumbered its
``SU_*`` bits between releases, so the symbol names are the stable facts.

Three layers, one module each: ``ctokens`` (comments, tokens, literals),
``cpreproc`` (conditionals and macros) and this module (declarations and
their initialisers), which is the entry point: ``parse_source``.
"""

import re

# CParseError, DEFAULT_CONFIG, Preprocessor and tokenize are part of this module's API (the
# generator and the tests import them from here); they are defined by the layers below.
from infrapower.tables.cpreproc import DEFAULT_CONFIG, Preprocessor
from infrapower.tables.ctokens import CParseError, int_literal, tokenize, unquote

__all__ = [
    "CParseError",
    "DEFAULT_CONFIG",
    "Preprocessor",
    "parse_source",
    "tokenize",
]

# Symbols that name flag bits; kept verbatim in flag fields.
_FLAG_SYMBOL = re.compile(r"^(SU_|ST_FLAG_)\w+$")

# Fields of the NUT structures, in declaration order.
LOOKUP_FIELDS = ("oid_value", "info_value", "fun_vp2s", "nuf_s2l")
SNMP_INFO_FIELDS = ("info_type", "info_flags", "info_len", "OID", "dfl", "flags", "oid2info")
MIB2NUT_FIELDS = (
    "mib_name", "mib_version", "oid_pwr_status", "oid_auto_check",
    "snmp_info", "sysOID", "alarms_info",
)

# NUT's initialiser helper macros -> which struct fields their arguments fill.
# (snmp-ups.h in NUT >= 2.8.1; plain braces in 2.8.0.)
_LOOKUP_MACROS = {
    "info_lkp_default": ("oid_value", "info_value"),
    "info_lkp_fun_vp2s": ("oid_value", "info_value", "fun_vp2s"),
    "info_lkp_nuf_vp2s": ("oid_value", "info_value", "fun_vp2s"),
    "info_lkp_nuf_s2l": ("oid_value", "info_value", "nuf_s2l"),
    "info_lkp_fun_s2l": ("oid_value", "info_value", "nuf_s2l"),
}
_SNMP_INFO_MACROS = {"snmp_info_default": SNMP_INFO_FIELDS}
_SENTINELS = ("info_lkp_sentinel", "snmp_info_sentinel")

_ARRAY_TYPES = {"info_lkp_t": "lookups", "snmp_info_t": "tables"}


def _split_top_level(tokens, filename):
    """Split a token list on commas that are not nested in (), {} or []."""
    parts, current, depth = [], [], 0
    for tok in tokens:
        if tok.kind == "punct" and tok.text in "({[":
            depth += 1
        elif tok.kind == "punct" and tok.text in ")}]":
            depth -= 1
            if depth < 0:
                raise CParseError(f"unbalanced {tok.text!r}", filename, tok.line)
        if depth == 0 and tok.is_punct(","):
            parts.append(current)
            current = []
        else:
            current.append(tok)
    if current:
        parts.append(current)
    return parts


def _matching(tokens, start, filename):
    """Index of the bracket closing the one at ``tokens[start]``."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    opening = tokens[start].text
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i].is_punct(opening):
            depth += 1
        elif tokens[i].is_punct(pairs[opening]):
            depth -= 1
            if depth == 0:
                return i
    raise CParseError(f"unbalanced {opening!r}", filename, tokens[start].line)


class _Values:
    """Turns the raw token list of one initialiser field into a value."""

    def __init__(self, pp, filename):
        self.pp = pp
        self.filename = filename

    @staticmethod
    def _strip_parens_and_casts(tokens):
        changed = True
        while changed and tokens:
            changed = False
            if tokens[0].is_punct("(") and tokens[-1].is_punct(")") and _closes_at_end(tokens):
                tokens = tokens[1:-1]
                changed = True
            # (type) / (type *) / (const type *) cast prefix
            if len(tokens) > 3 and tokens[0].is_punct("("):
                close = next((i for i, t in enumerate(tokens) if t.is_punct(")")), None)
                inner = tokens[1:close] if close else []
                if inner and all(t.kind == "ident" or t.is_punct("*") for t in inner) and inner[0].kind == "ident":
                    tokens = tokens[close + 1:]
                    changed = True
        return tokens

    def scalar(self, tokens, field):
        """String, number, None (NULL) or, failing that, the source text."""
        tokens = self._strip_parens_and_casts(self.pp.expand(tokens))
        if not tokens:
            raise CParseError(f"empty value for {field}", self.filename)
        if len(tokens) == 1 and tokens[0].kind == "ident" and tokens[0].text == "NULL":
            return None
        if all(t.kind == "string" for t in tokens):
            return "".join(unquote(t.text) for t in tokens)
        if len(tokens) == 1 and tokens[0].kind == "number":
            return _number(tokens[0].text)
        if len(tokens) == 2 and tokens[0].is_punct("-") and tokens[1].kind == "number":
            return -_number(tokens[1].text)
        if all(t.kind == "number" or t.kind == "punct" for t in tokens):
            try:
                return self.pp.evaluate(tokens)
            except CParseError:
                pass
        return " ".join(t.text for t in tokens)

    def symbol_or_null(self, tokens, field):
        """``&name[0]``, ``name`` or NULL/0 -> "name" or None.

        A non-zero element index (pointing into the middle of a lookup
        array) is refused rather than silently read from the start.
        """
        tokens = self._strip_parens_and_casts(tokens)
        texts = [t.text for t in tokens]
        line = tokens[0].line if tokens else None
        if texts in (["NULL"], ["0"]):
            return None
        if texts and texts[0] == "&":
            tokens, texts = tokens[1:], texts[1:]
        if len(texts) >= 4 and texts[1] == "[" and texts[-1] == "]":
            index = self.pp.evaluate(tokens[2:-1], line)
            if index != 0:
                raise CParseError(f"{field} points at element {index} of {texts[0]}: unsupported",
                                  self.filename, line)
            texts = texts[:1]
        if len(texts) == 1 and re.match(r"^[A-Za-z_]\w*$", texts[0]):
            return texts[0]
        raise CParseError(f"cannot read {field} from {' '.join(texts)!r}", self.filename, line)

    def flags(self, tokens, field):
        """``A | B | (C)`` -> ["A", "B", "C"]; 0 -> []."""
        tokens = self.pp.expand(tokens, keep=lambda name: bool(_FLAG_SYMBOL.match(name)))
        symbols = []
        for tok in tokens:
            if tok.kind == "ident":
                symbols.append(tok.text)
            elif tok.kind == "number":
                if _number(tok.text) != 0:
                    # A bare number would be release-specific bit values.
                    raise CParseError(f"numeric {field} {tok.text!r}: use flag symbols",
                                      self.filename, tok.line)
            elif tok.kind != "punct" or tok.text not in "|()":
                raise CParseError(f"unexpected {tok.text!r} in {field}", self.filename, tok.line)
        return symbols


def _closes_at_end(tokens):
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.is_punct("("):
            depth += 1
        elif tok.is_punct(")"):
            depth -= 1
            if depth == 0 and i != len(tokens) - 1:
                return False
    return True


def _number(text):
    stripped = text.rstrip("uUlLfF") if not text.lower().startswith("0x") else text.rstrip("uUlL")
    if re.match(r"^(0[xX][0-9a-fA-F]+|\d+)$", stripped):
        return int_literal(stripped)
    value = float(stripped)
    return int(value) if value.is_integer() and "." not in stripped and "e" not in stripped.lower() else value


def _struct_fields(element, macros, fields, filename):
    """Map one array element (braces or helper macro) to {field: tokens}."""
    if not element:
        raise CParseError("empty initialiser element", filename)
    head = element[0]
    if head.is_punct("{"):
        end = _matching(element, 0, filename)
        parts = _split_top_level(element[1:end], filename)
        names = fields
    elif head.kind == "ident" and head.text in macros and len(element) > 1 and element[1].is_punct("("):
        end = _matching(element, 1, filename)
        parts = _split_top_level(element[2:end], filename)
        names = macros[head.text]
        if len(parts) != len(names):
            raise CParseError(f"{head.text}() takes {len(names)} arguments, got {len(parts)}",
                              filename, head.line)
    else:
        raise CParseError(f"unsupported initialiser starting with {head.text!r}", filename, head.line)
    if len(parts) > len(fields):
        raise CParseError("too many fields in initialiser", filename, head.line)
    return dict(zip(names, parts))


def parse_source(text, filename=None, preprocessor=None, include=None):
    """Parse one preprocessed-or-raw C source.

    Returns ``{"lookups": {name: [...]}, "tables": {name: [...]},
    "mib2nut": {symbol: {...}}, "pointer_arrays": {name: [symbols]}}``
    where lookup rows are ``{"value", "string", "functions"}`` and table rows
    carry the snmp_info_t fields (flags as symbol lists).
    """
    pp = preprocessor or Preprocessor(filename=filename)
    compiled = pp.run(text, include=include)
    tokens = tokenize(compiled, 1, filename)
    values = _Values(pp, filename)
    result = {"lookups": {}, "tables": {}, "mib2nut": {}, "pointer_arrays": {}}

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "ident" and (tok.text in _ARRAY_TYPES or tok.text == "mib2nut_info_t"):
            parsed = _declaration(tokens, i, filename)
            if parsed is not None:
                name, is_pointer_array, body, end = parsed
                if tok.text == "mib2nut_info_t":
                    if is_pointer_array:
                        result["pointer_arrays"][name] = _pointer_list(body, filename)
                    elif body is not None:
                        result["mib2nut"][name] = _mib2nut(body, values, filename)
                elif body is not None and not is_pointer_array:
                    if tok.text == "info_lkp_t":
                        result["lookups"][name] = _lookup_rows(body, values, filename)
                    else:
                        result["tables"][name] = _snmp_rows(body, values, filename)
                i = end
                continue
        i += 1
    return result


def _declaration(tokens, i, filename):
    """Read ``TYPE [*] NAME [ [] ] [= {...}] ;`` starting at the type token.

    Returns (name, is_pointer_array, initialiser_tokens_or_None, next_index)
    or None if this is not a declaration (e.g. a cast or a prototype).
    """
    j = i + 1
    pointer = False
    while j < len(tokens) and tokens[j].is_punct("*"):
        pointer = True
        j += 1
    if j >= len(tokens) or tokens[j].kind != "ident":
        return None
    name = tokens[j].text
    j += 1
    is_array = False
    while j < len(tokens) and tokens[j].is_punct("["):
        j = _matching(tokens, j, filename) + 1
        is_array = True
    if j < len(tokens) and tokens[j].is_punct(";"):
        return name, pointer and is_array, None, j + 1  # extern/forward declaration
    if j >= len(tokens) or not tokens[j].is_punct("="):
        return None
    j += 1
    if j >= len(tokens) or not tokens[j].is_punct("{"):
        return None
    end = _matching(tokens, j, filename)
    if not (is_array or not pointer):
        return None
    return name, pointer and is_array, tokens[j + 1:end], end + 1


def _pointer_list(body, filename):
    symbols = []
    for part in _split_top_level(body, filename):
        texts = [t.text for t in part]
        if texts in (["NULL"], ["0"]):
            break
        if texts and texts[0] == "&":
            texts = texts[1:]
        if len(texts) != 1:
            raise CParseError(f"unsupported pointer array element {' '.join(texts)!r}", filename,
                              part[0].line)
        symbols.append(texts[0])
    return symbols


def _lookup_rows(body, values, filename):
    rows = []
    for element in _split_top_level(body, filename):
        if len(element) == 1 and element[0].text == "info_lkp_sentinel":
            break
        fields = _struct_fields(element, _LOOKUP_MACROS, LOOKUP_FIELDS, filename)
        string = values.scalar(fields["info_value"], "info_value") if "info_value" in fields else None
        value = values.scalar(fields["oid_value"], "oid_value")
        if string is None and value in (0, None):
            break  # { 0, NULL, ... } terminator
        functions = [
            values.symbol_or_null(fields[key], key)
            for key in ("fun_vp2s", "nuf_s2l") if key in fields
        ]
        rows.append({"value": value, "string": string,
                     "functions": [f for f in functions if f is not None]})
    return rows


def _snmp_rows(body, values, filename):
    rows = []
    for element in _split_top_level(body, filename):
        if len(element) == 1 and element[0].text == "snmp_info_sentinel":
            break
        fields = _struct_fields(element, _SNMP_INFO_MACROS, SNMP_INFO_FIELDS, filename)
        info = values.scalar(fields["info_type"], "info_type") if "info_type" in fields else None
        if info is None:
            break  # { NULL, 0, 0, NULL, NULL, 0, NULL } (or { NULL }) terminator
        missing = [f for f in SNMP_INFO_FIELDS if f not in fields]
        if missing:
            raise CParseError(f"snmp_info_t row {info!r} lacks {', '.join(missing)}", filename,
                              element[0].line)
        rows.append({
            "info": info,
            "info_flags": values.flags(fields["info_flags"], "info_flags"),
            "info_len": values.scalar(fields["info_len"], "info_len"),
            "oid": values.scalar(fields["OID"], "OID"),
            "dfl": values.scalar(fields["dfl"], "dfl"),
            "flags": values.flags(fields["flags"], "flags"),
            "lookup": values.symbol_or_null(fields["oid2info"], "oid2info"),
        })
    return rows


def _mib2nut(body, values, filename):
    parts = _split_top_level(body, filename)
    if parts and parts[0] and parts[0][0].is_punct("."):
        raise CParseError("designated initialisers are not supported for mib2nut_info_t", filename,
                          parts[0][0].line)
    fields = dict(zip(MIB2NUT_FIELDS, parts))
    record = {}
    for key in MIB2NUT_FIELDS:
        if key not in fields:
            record[key] = None
        elif key in ("snmp_info", "alarms_info"):
            record[key] = values.symbol_or_null(fields[key], key)
        else:
            record[key] = values.scalar(fields[key], key)
    return record