"""JSON from outside (model files, run bundles, the drawing canvas), bounded before it is trusted.

Python's parser recurses once per nesting level: 100,000 nested brackets raise
RecursionError, and a few hundred that parse still break code that walks the result
later (json.dumps, Streamlit's own encoder). So the depth is measured on the text,
with a scan that does not recurse, before the text is parsed; and a value that
arrives already parsed is walked without recursion, with a bound on its size too.
"""

from __future__ import annotations

import json
import re

# A string literal, escapes included: what the depth scan skips (brackets inside strings do not nest).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class JsonError(ValueError):
    """JSON refused; the message says why in a few words (the caller names the source)."""


def depth_of_text(text: str) -> int:
    """The deepest nesting of [ and { in JSON `text` (0 for a scalar), without recursion."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads(text: str | bytes, *, max_bytes: int, max_depth: int):
    """Parse `text`, refusing more than `max_bytes` or a nesting deeper than `max_depth`."""
    if isinstance(text, bytes):
        if len(text) > max_bytes:
            raise JsonError(f"{len(text):,} bytes of JSON, more than the {max_bytes:,} allowed")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonError("not UTF-8 text") from None
    if len(text) > max_bytes:
        raise JsonError(f"{len(text):,} characters of JSON, more than the {max_bytes:,} allowed")
    if (depth := depth_of_text(text)) > max_depth:
        raise JsonError(f"JSON nested {depth} levels deep, more than the {max_depth} allowed")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonError(f"not valid JSON ({exc.msg})") from None
    except RecursionError:  # cannot happen after the depth check; kept so that it never escapes
        raise JsonError("JSON nested too deeply") from None


def check_tree(value, *, max_depth: int, max_nodes: int) -> None:
    """Refuse an already parsed JSON value deeper than `max_depth` or with more than
    `max_nodes` values in all (walked with a list, not recursion)."""
    pending, nodes = [(value, 0)], 0
    while pending:
        item, depth = pending.pop()
        nodes += 1
        if nodes > max_nodes:
            raise JsonError(f"more than {max_nodes:,} values")
        if isinstance(item, (dict, list, tuple)):
            if depth >= max_depth:
                raise JsonError(f"nested more than {max_depth} levels deep")
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
            if isinstance(item, dict) and not all(isinstance(key, str) for key in item):
                raise JsonError("an object key that is not text")
        elif not (item is None or isinstance(item, (str, int, float, bool))):
            raise JsonError(f"a {type(item).__name__}, not a JSON value")
