"""ups.conf and the PowerChain's servers file, read and written back
losslessly: a thin user of infrapower.nutconf, the pack's one parser of
NUT's configuration syntax (see infrapower/nutconf/syntax.py for the
grammar and the write-back rules)."""

from infrapower.nutconf.syntax import ConfError, ConfFile, Entry, Section, quote, split_line

__all__ = ["ConfError", "Entry", "Section", "UpsConf", "quote", "split_line"]


class UpsConf(ConfFile):
    """One file in ups.conf's syntax (`key = value`, one value per key):
    `globals`, `sections` (in file order), `set`, `remove`,
    `keep_sections`, `text`, `write`."""

    def __init__(self, text="", path="<text>", kind="ups.conf"):
        super().__init__(text, path, kind="ups.conf")
