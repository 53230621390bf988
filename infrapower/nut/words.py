"""NUT's words, as its parseconf reads them, for the network protocol and
the configuration files alike: one splitter, one quoter.

Words are separated by blanks; `"..."` quotes blanks; a backslash escapes
the next character.  Configuration files add two rules: `#` outside
quotes starts a comment, and `=` is a word of its own (`key=value` is
`key = value`).  A protocol line has neither: `#` and `=` are ordinary
characters of a value there.
"""

from infrapower.errors import NutError

# Characters a word may hold and still be written bare, both ways (`=` is
# one more for the protocol, where it is no separator).
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:/@+,%[]")


def tokens(text, config=False):
    """(words, column where a comment starts or None, whether a quote was
    left open) of one line."""
    words, current, in_word, quoted = [], [], False, False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index + 1])
            in_word = True
            index += 2
            continue
        if quoted:
            if char == '"':
                quoted = False
            else:
                current.append(char)
        elif char == '"':
            quoted, in_word = True, True
        elif config and char == "#":
            break
        elif char in " \t\r":
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        elif config and char == "=":
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
            words.append("=")
        else:
            current.append(char)
            in_word = True
        index += 1
    if in_word:
        words.append("".join(current))
    return words, (index if index < len(text) else None), quoted


def split_words(line):
    """A protocol line (upsd's reply, a driver's socket line) as words."""
    return tokens(line)[0]


def quote(value, config=False, always=False):
    """A word as NUT reads it back: bare when plain, else quoted with `\\`,
    `"` and `#` escaped (NUT's parseconf, which upsd uses for its files,
    its clients' requests and its drivers' sockets alike, refuses a `#`
    inside quotes in 2.8.0 to 2.8.5: upsd drops the line and never
    answers; an escaped one is just a `#`).  A line break or NUL is
    refused: NUT reads lines, and one inside a value (from a config file
    or an option) would smuggle in a second request or entry.  The value
    is not shown: it may be a password."""
    text = str(value)
    if any(char in "\r\n\0" for char in text):
        raise NutError("a value for NUT holds a line break or NUL character: refused (check the configured names and passwords)")
    plain = _PLAIN if config else _PLAIN | {"="}
    if not always and text and all(char in plain for char in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("#", "\\#") + '"'
