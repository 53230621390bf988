"""NUT's configuration files, read and written back losslessly.

The grammar is NUT's parseconf (the words come from infrapower.nut.words,
the pack's one splitter): blanks separate words, `"..."` quotes blanks and
`#`, a backslash escapes the next character, `#` outside quotes starts a
comment, `=` is a word of its own.  `[name]` opens a section; lines before
the first section are global directives.  A line is `key = value`, a
directive `KEY word word...` (LISTEN, MONITOR, `upsmon primary`) or a
lone flag (`nolock`).

Every line is kept as written, with its own line ending (a CRLF file stays
CRLF, a missing final newline stays missing): an unmodified file writes
back byte for byte, and an edit rewrites or inserts only the lines it
must, keeping indentation and trailing comments.
"""

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from infrapower.errors import ConfigError, NutError
from infrapower.nut.words import quote as nut_quote
from infrapower.nut.words import tokens

KINDS = ("ups.conf", "upsd.conf", "upsd.users", "upsmon.conf", "nut.conf", "upssched.conf")
# Files whose lines are `KEY word...` directives, not `key = value`.
DIRECTIVE_KINDS = ("upsd.conf", "upsmon.conf", "upssched.conf")
# Keys written as directives inside `key = value` files.
DIRECTIVE_KEYS = {"upsd.users": ("upsmon",)}
# Files holding passwords: `check` wants them unreadable by others; a new
# one is 0640 in its directory's group (Debian's /etc/nut is root:nut: upsd
# reads its files as `nut`).
SECRET_KINDS = ("ups.conf", "upsd.users", "upsmon.conf", "upsd.conf")
NEW_SECRET_MODE = 0o640


class ConfError(ConfigError):
    """A problem, with where it is: `file:line: message`."""

    def __init__(self, path, line, message):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.problem = path, line, message


@dataclass
class Entry:
    key: str
    value: object  # the first word after the key (and `=`); None for a lone flag
    line: int  # 1-based
    args: tuple = ()  # every word after the key (and `=`)
    assign: bool = True  # written with `=`


@dataclass
class Section:
    name: object  # str, or None for the global directives
    line: int  # of the [name] header; 0 for globals
    entries: list = field(default_factory=list)

    def get(self, key, default=None):
        """The value of the last `key` line (NUT lets a later line win)."""
        found = self.entry(key)
        return found.value if found else default

    def entry(self, key):
        found = self.all(key)
        return found[-1] if found else None

    def all(self, key):
        """Every `key` line, in file order (instcmds, actions, MONITOR)."""
        return [entry for entry in self.entries if entry.key == key]


def split_line(text, path="<text>", line=0):
    """(words, comment start or None) of one line, NUT's way."""
    words, comment, open_quote = tokens(text, config=True)
    if open_quote:
        raise ConfError(path, line, "unterminated quote")
    return words, comment


def quote(value):
    """A value as NUT reads it back (infrapower.nut.words.quote: every `#`
    escaped, since NUT's parseconf refuses one inside quotes)."""
    return nut_quote(value, config=True)


def comment_mark_in_quotes(text):
    """Whether NUT's parseconf refuses this line for a `#` inside quotes
    (its states: between words, in a word, in quotes; a backslash takes
    the next character as it is; `"` opens quotes only at a word's start)."""
    state, index = "between", 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            state = "quoted" if state == "quoted" else "word"
            continue
        if state == "quoted":
            if char == "#":
                return True
            if char == '"':
                state = "between"
        elif char == "#":
            return False  # a comment: the rest of the line is NUT's to skip
        elif char in " \t\r=":
            state = "between"
        elif state == "between" and char == '"':
            state = "quoted"
        else:
            state = "word"
        index += 1
    return False


def kind_of(path):
    """The file kind from its name (`ups.conf`, ...), or None."""
    name = Path(str(path)).name
    return name if name in KINDS else None


def _split_keeping_ends(text):
    """(line contents, line endings): only `\\n` ends a line, as for NUT;
    a `\\r` before it is part of the ending (CRLF files stay CRLF)."""
    parts = text.split("\n")
    contents, ends = [], []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if last and part == "":
            break
        if not last and part.endswith("\r"):
            contents.append(part[:-1])
            ends.append("\r\n")
        else:
            contents.append(part)
            ends.append("" if last else "\n")
    return contents, ends


class ConfFile:
    """One file in NUT's syntax: `globals`, `sections` (in file order),
    and every original line for write-back."""

    def __init__(self, text="", path="<text>", kind=None):
        self.path = str(path)
        self.kind = kind or kind_of(path)
        self.lines, self.ends = _split_keeping_ends(text)
        self.newline = "\r\n" if "\r\n" in self.ends else "\n"
        self._parse()

    @classmethod
    def read(cls, path, kind=None):
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise ConfError(path, 0, f"cannot read: {error.strerror or error}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise ConfError(path, line, "not UTF-8 text") from None
        return cls(text, path, kind)

    @property
    def strict(self):
        """ups.conf takes exactly one value per key (a second word is a
        forgotten quote: NUT would silently drop it)."""
        return self.kind in (None, "ups.conf")

    def _parse(self):
        self.globals = Section(None, 0)
        self.sections = {}
        current = self.globals
        for number, text in enumerate(self.lines, start=1):
            words, _comment = split_line(text, self.path, number)
            if not words:
                continue
            head = words[0]
            if head.startswith("["):
                if len(words) != 1 or not head.endswith("]"):
                    raise ConfError(self.path, number, f"a section header is `[name]`, got: {text.strip()}")
                name = head[1:-1].strip()
                if not name:
                    raise ConfError(self.path, number, "empty section name []")
                if name in self.sections:
                    raise ConfError(
                        self.path, number, f"section [{name}] again (first at line {self.sections[name].line})"
                    )
                current = self.sections[name] = Section(name, number)
            elif head == "=":
                # The line itself is never shown: in these files it may hold a password.
                raise ConfError(self.path, number, "`=` without a key")
            elif len(words) >= 2 and words[1] == "=":
                args = tuple(words[2:])
                if "=" in args or (self.strict and len(args) > 1):
                    raise ConfError(self.path, number, f"expected `key = value`, got more than one word after "
                                    f"`{head} =` (quote a value holding blanks or `=`)")
                current.entries.append(Entry(head, args[0] if args else "", number, args, True))
            elif len(words) == 1:
                current.entries.append(Entry(head, None, number, (), False))
            elif self.strict:
                raise ConfError(self.path, number, f"expected `key = value`, got `{head}` without `=`")
            else:
                current.entries.append(Entry(head, words[1], number, tuple(words[1:]), False))

    # -- what a new line looks like ---------------------------------------------

    def _section(self, name):
        return self.globals if name is None else self.sections.get(name)

    def _format(self, key, values, indent, like=None):
        values = [values] if isinstance(values, str) else list(values)
        try:
            text = " ".join(quote(value) for value in values)
        except NutError:
            # NUT reads lines: a line break would start another entry.  The
            # value itself is not shown: it may be a password.
            raise ConfError(self.path, 0, f"a value for {key} holds a line break or NUL character: refused") from None
        if like is not None:
            assign = like.assign
            spaced = " = " if assign and " =" in self.lines[like.line - 1] else "="
        else:
            directive = self.kind in DIRECTIVE_KINDS or key in DIRECTIVE_KEYS.get(self.kind, ())
            assign = not directive
            spaced = "=" if self.kind == "nut.conf" else " = "  # nut.conf is read by sh too
        if not assign:
            return f"{indent}{key} {text}".rstrip()
        return f"{indent}{key}{spaced}{text}"

    def _insert(self, index, text):
        """A new line before 0-based `index`, ending as the file's lines do."""
        if index == len(self.lines) and self.ends and self.ends[-1] == "":
            self.ends[-1] = self.newline
        self.lines.insert(index, text)
        self.ends.insert(index, self.newline)

    def _delete(self, number):
        del self.lines[number - 1]
        del self.ends[number - 1]

    def _add_section(self, name):
        if self.lines and self.lines[-1].strip():
            self._insert(len(self.lines), "")
        self._insert(len(self.lines), f"[{name}]")
        self._parse()
        return self.sections[name]

    def _indent(self, section):
        if section.entries:
            first = self.lines[section.entries[0].line - 1]
            return first[: len(first) - len(first.lstrip())]
        return "\t" if section.name is not None else ""

    # -- edits --------------------------------------------------------------------

    def set(self, section_name, key, value):
        """Set `key` (a str, or a list of words for a directive) in a section
        (None: the globals): the last `key` line is rewritten in place,
        keeping its indentation, its style and its comment; a missing key or
        section is added at the end."""
        section = self._section(section_name) or self._add_section(section_name)
        existing = section.entry(key)
        if existing is None:
            return self.add(section_name, key, value)
        old = self.lines[existing.line - 1]
        indent = old[: len(old) - len(old.lstrip())]
        _words, comment_at = split_line(old, self.path, existing.line)
        # One tab before a kept comment: the old padding fitted the old value.
        tail = f"\t{old[comment_at:]}" if comment_at is not None else ""
        self.lines[existing.line - 1] = self._format(existing.key, value, indent, existing) + tail
        self._parse()

    def add(self, section_name, key, value):
        """Add one more `key` line (repeated keys: instcmds, MONITOR) after
        the section's last entry."""
        section = self._section(section_name) or self._add_section(section_name)
        anchor = section.entries[-1].line if section.entries else section.line
        if section.name is None and not section.entries:
            # Globals go before the first section, after any leading comments.
            first = min((s.line for s in self.sections.values()), default=len(self.lines) + 1)
            anchor = first - 1
            while anchor > 0 and not self.lines[anchor - 1].strip():
                anchor -= 1
        self._insert(anchor, self._format(key, value, self._indent(section)))
        self._parse()

    def set_all(self, section_name, key, values):
        """Make the section's `key` lines exactly `values`, one per line
        (instcmds, actions): lines already right stay untouched, others go,
        missing ones are added."""
        section = self._section(section_name) or self._add_section(section_name)
        wanted = list(dict.fromkeys(values))
        keep = []
        for entry in section.all(key):
            if entry.args and entry.args[0] in wanted and entry.args[0] not in keep and len(entry.args) == 1:
                keep.append(entry.args[0])
            else:
                self._delete_entry(entry)
                return self.set_all(section_name, key, values)  # numbers moved
        for value in wanted:
            if value not in keep:
                self.add(section_name, key, value)

    def _delete_entry(self, entry):
        self._delete(entry.line)
        self._parse()

    def delete(self, section_name, key=None):
        """Drop every `key` line of a section (None: the globals), or with
        no key the whole section.  Returns whether anything went."""
        section = self._section(section_name)
        if section is None:
            return False
        if key is None:
            self.remove(section_name)
            return True
        found = section.all(key)
        for entry in reversed(found):
            self._delete(entry.line)
        self._parse()
        return bool(found)

    def remove(self, section_name):
        """Drop a section: its header and every line up to the next one."""
        section = self.sections[section_name]
        following = [other.line for other in self.sections.values() if other.line > section.line]
        end = min(following) - 1 if following else len(self.lines)
        for number in range(end, section.line - 1, -1):
            self._delete(number)
        self._parse()

    def keep_sections(self, names=None):
        """Drop every section not in `names` (None keeps them all)."""
        for name in [n for n in self.sections if names is not None and n not in names]:
            self.remove(name)

    # -- write-back ---------------------------------------------------------------

    def text(self):
        return "".join(line + end for line, end in zip(self.lines, self.ends))

    def write(self, path=None, mode=None):
        """Write atomically (a temporary file in the same directory, then a
        rename): a reader sees the old file or the new one, never half.
        An existing file keeps its mode and owner; a new one gets `mode`
        (default 0640 in the directory's group for files that hold
        passwords, else 0644)."""
        # Through a symlink (/etc/nut -> a managed tree): replace its target.
        target = Path(os.path.realpath(path or self.path))
        try:
            previous = target.stat()
        except FileNotFoundError:
            previous = None
        except OSError as error:
            raise ConfError(target, 0, f"cannot write: {error.strerror or error}") from None
        secret = kind_of(target) in SECRET_KINDS or self.kind in SECRET_KINDS
        if mode is None:
            mode = NEW_SECRET_MODE if secret else 0o644
        try:
            handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        except OSError as error:  # a directory this user may not write in
            raise ConfError(target, 0, f"cannot write: {error.strerror or error}") from None
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                out.write(self.text())
                out.flush()
                os.fsync(out.fileno())
            if previous is not None:
                os.chmod(temporary, previous.st_mode & 0o7777)
                if (previous.st_uid, previous.st_gid) != (os.geteuid(), os.getegid()):
                    os.chown(temporary, previous.st_uid, previous.st_gid)
            else:
                group = target.parent.stat().st_gid
                if secret and group != os.getegid():
                    # As Debian's nut packages keep /etc/nut (root:nut): upsd
                    # reads upsd.users and ups.conf after dropping to `nut`.
                    try:
                        os.chown(temporary, -1, group)
                    except PermissionError:
                        pass  # not root, nor in that group: the file stays the writer's
                os.chmod(temporary, mode)
            os.replace(temporary, target)
        except OSError as error:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise ConfError(target, 0, f"cannot write: {error.strerror or error}") from None
