"""JSON read with a bound on its nesting: Python's parser recurses once per level, so a file
nested 100,000 deep (a forged cache entry, say) would end in a RecursionError, not in a
message. Every JSON that comes from a file is read through `loads`."""

from __future__ import annotations

import json
import re

# The deepest nesting accepted (what this project writes is at most 8 deep).
MAX_DEPTH = 64
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def depth(data: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets in strings not counted),
    counted no further than one past MAX_DEPTH."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b'""', data))
    level = deepest = 0
    for byte in brackets:
        level += 1 if byte in b"[{" else -1
        if level > deepest:
            deepest = level
            if deepest > MAX_DEPTH:
                break
    return deepest


def loads(data: bytes | str, max_depth: int = MAX_DEPTH):
    """json.loads, refusing (ValueError) a text nested deeper than max_depth."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if depth(raw) > max_depth:
        raise ValueError(f"JSON nested more than {max_depth} deep")
    try:
        return json.loads(data)
    except RecursionError:  # belt and braces: what the count above did not see
        raise ValueError(f"JSON nested too deep") from None
