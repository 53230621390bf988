"""Immutable records for settings, without `dataclasses`.

Why: `dataclasses` imports `inspect`, ~5 ms of every agent run, and
fencing time is spent mostly starting Python when many agents start at
once.  A record is a namedtuple (immutable, compared by value, cheap to
build) whose repr leaves out its secrets, so a settings object can be
logged whole.
"""

from collections import namedtuple


def record(name, fields, defaults=(), secret=()):
    """A namedtuple class `name` with `fields` (the last len(defaults)
    have defaults) whose repr shows the `secret` fields as ****."""
    base = namedtuple(name, fields, defaults=defaults)
    hidden = frozenset(secret)

    def __repr__(self):
        shown = ", ".join(f"{field}={'****' if field in hidden else repr(value)}"
                          for field, value in zip(self._fields, self))
        return f"{type(self).__name__}({shown})"

    return type(name, (base,), {"__slots__": (), "__repr__": __repr__})
