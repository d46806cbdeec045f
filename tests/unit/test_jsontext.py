"""The one guard for untrusted JSON (gateway.core.jsontext): what it refuses, what it keeps."""

from __future__ import annotations

import pytest

from gateway.core import jsontext


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b'"\\ud800"', "lone surrogate"),
        (b'{"\\udfff": 1}', "lone surrogate"),
        (b'["ok", {"a": "x\\udbff"}]', "lone surrogate"),
        (b'"\\ude00\\ud83d"', "lone surrogate"),  # a pair in the wrong order is two lone halves
        (b"NaN", "not finite"),
        (b"[-Infinity]", "not finite"),
        (b'{"n": 1e400}', "not finite"),
        (b'{"a": 1, "a": 1}', "duplicate key"),
        (b'{"x": {"b": 1, "b": 2}}', "duplicate key"),
        (b"[" * 65 + b"]" * 65, "nested"),
        (b"[" * 100_000, "nested"),
        ('{"a": "b"}'.encode("utf-16"), "not UTF-8"),
        (b'"\xff"', "not UTF-8"),
        (b'"\xed\xa0\x80"', "not UTF-8"),  # a surrogate encoded as UTF-8 bytes
        (b"{", "invalid JSON"),
        (b"\xef\xbb\xbf{}", "invalid JSON"),
        (b"", "invalid JSON"),
    ],
)
def test_refused(text: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        jsontext.loads(text)


def nested(levels: int) -> list[object]:
    value: list[object] = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate pair is one character
        ('"Zo\u00eb \U0001f600"'.encode(), "Zo\u00eb \U0001f600"),
        (b"[1.5, -0.0, 1e308, 12345678901234567890123]", [1.5, -0.0, 1e308, 12345678901234567890123]),
        (b'{"a": {"a": 1}}', {"a": {"a": 1}}),  # the same key at two levels is no duplicate
        (b"[" * 64 + b"]" * 64, nested(64)),
    ],
)
def test_kept(text: bytes, value: object) -> None:
    assert jsontext.loads(text) == value
    assert jsontext.loads(text.decode()) == value


def test_messages_never_echo_the_input() -> None:
    for text in (b'{"secret-name": NaN}', b'{"secret-name": 1, "secret-name": 2}', b'"secret-\\ud800"'):
        with pytest.raises(ValueError) as caught:
            jsontext.loads(text)
        assert "secret" not in str(caught.value)


@pytest.mark.parametrize("raw", [b"[" * 100_000, b"[" * 65 + b"]" * 65, b'{"a":' * 65 + b"1" + b"}" * 65])
def test_too_deep_is_a_value_error_that_says_so(raw: bytes) -> None:
    with pytest.raises(ValueError) as caught:
        jsontext.loads(raw)
    assert str(caught.value) == "JSON is nested more than 64 levels deep"


def test_sixty_four_levels_are_kept() -> None:
    deepest: list[object] = []
    for _ in range(63):
        deepest = [deepest]
    assert jsontext.loads(b"[" * 64 + b"]" * 64) == deepest


def test_sixty_four_levels_are_kept_when_the_walk_counts_them() -> None:
    """More than 64 brackets (one is in a string) make the parser walk the value: 64 levels still pass."""
    deep = "[" * 63 + "]" * 63
    assert jsontext.loads(f'["[", {deep}]') == ["[", nested(63)]
    assert jsontext.loads(f'{{"[": {deep}}}'.encode()) == {"[": nested(63)}


def test_a_surrogate_pair_passes_the_walk_in_keys_lists_and_scalars() -> None:
    face = "\U0001f600"
    assert jsontext.loads(b'{"\\ud83d\\ude00": ["\\ud83d\\ude00", 1, null, {}]}') == {face: [face, 1, None, {}]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'"\\ud800"', "JSON string holds a lone surrogate"),
        (b'{"a": 1, "a": 2}', "JSON object has a duplicate key"),
        (b"[NaN]", "JSON number is not finite (NaN, Infinity or out of range)"),
        (b"[1e400]", "JSON number is not finite (NaN, Infinity or out of range)"),
        (b'"\xff"', "JSON text is not UTF-8"),
        (b"{", "invalid JSON"),
    ],
)
def test_messages(text: bytes, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        jsontext.loads(text)
    assert str(caught.value) == message
