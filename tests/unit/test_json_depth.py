"""The strict loader's nesting limit: counted before the recursive parser runs."""

from __future__ import annotations

import pytest

from gateway.jsonio import MAX_DEPTH, InvalidJSON, strict_loads


@pytest.mark.parametrize("text", [
    "[" * MAX_DEPTH + "]" * MAX_DEPTH,  # exactly the limit
    '{"a": "' + "[{" * 200 + '"}',  # brackets in a string do not nest
    '{"a": [' + ", ".join(["[1]"] * 100) + "]}",  # many openings, never deep
])
def test_json_within_the_nesting_limit_is_read(text):
    strict_loads(text)


@pytest.mark.parametrize("text", [
    "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    '{"a": ' + '{"b": ' * MAX_DEPTH + "1" + "}" * MAX_DEPTH + "}",
])
def test_json_nested_deeper_than_the_limit_is_refused(text):
    with pytest.raises(InvalidJSON, match=f"deeper than {MAX_DEPTH}"):
        strict_loads(text)
