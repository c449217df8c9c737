"""Many events of one shape as JSON without a dictionary per event.

A card event becomes a feed event and an audit entry for each of a dozen agencies: a million
small JSON documents per 100,000 cards. The shared envelope writer runs once per shape with
placeholder strings; each event then joins the constant pieces with its own values, already
JSON-encoded. The output is byte for byte what the writer gives for the same values (the
tests hold feed events and audit entries equal to their models' JSON).
"""

from __future__ import annotations

import orjson

_MARK = "\x00hole:"
_ENCODED_MARK = orjson.dumps(_MARK)[1:-1]


def hole(name: str) -> str:
    """The placeholder string to write where the value called `name` goes."""
    return f"{_MARK}{name}\x00"


class JsonTemplate:
    """JSON written once with `hole(name)` strings in place of values. `holes` names every
    hole in the order it appears in the text (a value used twice is named twice); `fill`
    takes the values in that order, each already encoded (`encode`), and puts them where the
    holes were, quotes included."""

    def __init__(self, written: bytes, holes: tuple[str, ...]) -> None:
        text = written.replace(b"%", b"%%")
        at = 0
        for name in holes:
            mark = orjson.dumps(hole(name))
            found = text.find(mark, at)
            if found < 0 or _ENCODED_MARK in text[at:found]:
                raise ValueError(f"hole {name!r} is not next in the template")
            text = text[:found] + b"%s" + text[found + len(mark) :]
            at = found + 2
        if _ENCODED_MARK in text:
            raise ValueError("the template has holes that were not named")
        self._format = text

    def fill(self, *values: bytes) -> bytes:
        """The JSON with the holes replaced by `values`, in the order of `holes`."""
        return self._format % values


def encode(value: object) -> bytes:
    """A value as JSON, as the envelope writer writes it."""
    return orjson.dumps(value)
