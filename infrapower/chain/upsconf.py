"""NUT's configuration syntax (ups.conf, upsd.users, ...), read and written
back without losing anything a person wrote.

The grammar is that of NUT's parseconf: a line is a list of words separated
by blanks; `"..."` quotes blanks and `#`; a backslash escapes the next
character (`\\"`, `\\\\`, `\\#`); `#` outside quotes starts a comment; `=` is a
word of its own (`key=value` and `key = value` are the same).  `[name]`
opens a section; lines before the first section are global directives.  A
line is `key = value` or a lone flag (`nolock`).

Every line is kept as written: `set()` rewrites only the line of the entry
it changes (keeping its indentation and trailing comment) or inserts one
line at the end of the section, so comments, order and blank lines of a
hand-kept file survive a write-back.
"""

from dataclasses import dataclass, field
from pathlib import Path

from infrapower.errors import ConfigError
from infrapower.nut.words import quote as nut_quote
from infrapower.nut.words import tokens


class ConfError(ConfigError):
    """A syntax error, with where it is: `file:line: message`."""

    def __init__(self, path, line, message):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line = path, line


@dataclass
class Entry:
    key: str
    value: object  # str, or None for a lone flag
    line: int  # 1-based


@dataclass
class Section:
    name: object  # str, or None for the global directives
    line: int  # of the [name] header; 0 for globals
    entries: list = field(default_factory=list)

    def get(self, key, default=None):
        """The value of the last `key` line (NUT lets a later line win)."""
        found = [entry for entry in self.entries if entry.key == key]
        return found[-1].value if found else default

    def entry(self, key):
        found = [entry for entry in self.entries if entry.key == key]
        return found[-1] if found else None


def split_line(text, path="<text>", line=0):
    """(words, comment start or None) of one line, NUT's way."""
    words, comment, open_quote = tokens(text, config=True)
    if open_quote:
        raise ConfError(path, line, "unterminated quote")
    return words, comment


def quote(value):
    """A value as NUT reads it back (infrapower.nut.words)."""
    return nut_quote(value, config=True)


class UpsConf:
    """One file in NUT's syntax: `globals`, `sections` (in file order),
    and the original lines for write-back."""

    def __init__(self, text="", path="<text>"):
        self.path = str(path)
        self.lines = text.splitlines()
        self.trailing_newline = text.endswith("\n") or not text
        self._parse()

    @classmethod
    def read(cls, path):
        try:
            return cls(Path(path).read_text(), path)
        except OSError as error:
            raise ConfError(path, 0, f"cannot read: {error.strerror or error}") from None

    def _parse(self):
        self.globals = Section(None, 0)
        self.sections = {}
        current = self.globals
        for number, text in enumerate(self.lines, start=1):
            words, _comment = split_line(text, self.path, number)
            if not words:
                continue
            head = words[0]
            if head.startswith("[") and head.endswith("]") and len(words) == 1:
                name = head[1:-1].strip()
                if not name:
                    raise ConfError(self.path, number, "empty section name []")
                if name in self.sections:
                    raise ConfError(
                        self.path, number, f"section [{name}] again (first at line {self.sections[name].line})"
                    )
                current = self.sections[name] = Section(name, number)
            elif len(words) == 1:
                current.entries.append(Entry(head, None, number))
            elif len(words) == 3 and words[1] == "=":
                current.entries.append(Entry(head, words[2], number))
            elif len(words) == 2 and words[1] == "=":
                current.entries.append(Entry(head, "", number))
            else:
                raise ConfError(self.path, number, f"expected `key = value`, got: {text.strip()}")

    # -- write-back -------------------------------------------------------------

    def set(self, section_name, key, value):
        """Set `key = value` in a section (None: the globals), adding the
        section at the end if it does not exist."""
        section = self.globals if section_name is None else self.sections.get(section_name)
        if section is None:
            if self.lines and self.lines[-1].strip():
                self.lines.append("")
            self.lines.append(f"[{section_name}]")
            section = self.sections[section_name] = Section(section_name, len(self.lines))
        existing = section.entry(key)
        if existing is not None:
            old = self.lines[existing.line - 1]
            indent = old[: len(old) - len(old.lstrip())]
            _words, comment_at = split_line(old, self.path, existing.line)
            comment = old[comment_at:] if comment_at is not None else ""
            self.lines[existing.line - 1] = f"{indent}{key} = {quote(value)}" + (f"\t{comment}" if comment else "")
        else:
            if section.entries:
                anchor = section.entries[-1].line
                first = self.lines[section.entries[0].line - 1]
                indent = first[: len(first) - len(first.lstrip())]
            else:
                anchor = section.line
                indent = "\t" if section.name is not None else ""
            self.lines.insert(anchor, f"{indent}{key} = {quote(value)}")
        # Line numbers moved: parse again rather than patch every entry.
        self._parse()

    def remove(self, section_name):
        """Drop a section: its header and every line up to the next one."""
        section = self.sections[section_name]
        following = [other.line for other in self.sections.values() if other.line > section.line]
        end = min(following) - 1 if following else len(self.lines)
        del self.lines[section.line - 1:end]
        self._parse()

    def keep_sections(self, names=None):
        """Drop every section not in `names` (None keeps them all)."""
        for name in [n for n in self.sections if names is not None and n not in names]:
            self.remove(name)

    def text(self):
        return "\n".join(self.lines) + ("\n" if self.trailing_newline and self.lines else "")

    def write(self, path=None):
        Path(path or self.path).write_text(self.text())
