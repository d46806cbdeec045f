from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core import sse


def feed_all(*chunks: str) -> tuple[sse.Parser, list[sse.Event]]:
    parser = sse.Parser()
    events: list[sse.Event] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return parser, events


def test_data_lines_join_and_blank_line_dispatches() -> None:
    _, events = feed_all("data: one\ndata:two\ndata:  three\n\n")
    assert events == [sse.Event(data="one\ntwo\n three")]


def test_event_names_ids_comments_and_retry() -> None:
    parser, events = feed_all(": hello\nevent: flowrun\nid: 7\nretry: 1500\ndata: {}\n\ndata: x\n\n")
    assert events == [sse.Event(data="{}", event="flowrun", id="7"), sse.Event(data="x", id="7")]
    assert parser.retry_ms == 1500 and parser.last_id == "7"


def test_all_line_endings() -> None:
    _, events = feed_all("data: a\r\n\r\ndata: b\r\rdata: c\n\n")
    assert [e.data for e in events] == ["a", "b", "c"]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    _, events = feed_all("data: a\r", "\n", "data: b\r", "\n\r\n")
    assert [e.data for e in events] == ["a\nb"]


def test_events_without_data_and_unfinished_events_are_not_dispatched() -> None:
    parser, events = feed_all("event: ping\n\nid: 3\n\ndata: half")
    assert events == []
    assert parser.last_id == "3"


def test_ignored_fields() -> None:
    parser, events = feed_all("retry: soon\nid: a\0b\nfoo: bar\ndata\n\n")
    assert events == [sse.Event(data="")]
    assert parser.retry_ms is None and parser.last_id is None


def test_size_limits() -> None:
    with pytest.raises(ValueError, match="line"):
        sse.Parser(max_chars=10).feed("data: " + "x" * 20)
    parser = sse.Parser(max_chars=10)
    with pytest.raises(ValueError, match="event"):
        parser.feed("data: 123456\ndata: 123456\n")


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=20), max_size=5), st.data())
def test_chunking_never_changes_the_events(lines: list[str], data: st.DataObject) -> None:
    text = "".join(f"data: {line}\r\n" for line in lines) + "\r\n"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    assert feed_all(*chunks)[1] == feed_all(text)[1]


def test_limits_are_inclusive_and_each_event_starts_from_zero() -> None:
    """An unfinished line of exactly max_chars, and events of exactly max_chars (data plus one per line), pass."""
    parser = sse.Parser(max_chars=10)
    assert parser.feed("data:12345") == []  # the unfinished line is 10 characters
    assert parser.feed("6789\n\n") == [sse.Event(data="123456789")]  # 9 + 1 = 10
    assert parser.feed("data:1234\ndata:1234\n\n") == [sse.Event(data="1234\n1234")]  # 5 + 5 = 10
    assert parser.feed("data:123456789\n\n") == [sse.Event(data="123456789")]


def test_size_limit_messages() -> None:
    with pytest.raises(ValueError, match=r"^an event stream line is too long$"):
        sse.Parser(max_chars=10).feed("data:123456")
    with pytest.raises(ValueError, match=r"^an event stream event is too large$"):
        sse.Parser(max_chars=10).feed("data:1234567890\n")


def test_a_chunk_starting_with_lf_after_lf_is_a_blank_line() -> None:
    """Only the LF right after a CR is dropped; an LF after an LF ends the event."""
    parser = sse.Parser()
    assert parser.feed("data: a\n") == []
    assert parser.feed("\n") == [sse.Event(data="a")]
    assert parser.feed("data: b\r") == []
    assert parser.feed("\n") == []
    assert parser.feed("\n") == [sse.Event(data="b")]


def test_a_comment_line_sets_no_field() -> None:
    parser, events = feed_all(":data: x\n:id: 1\n:retry: 5\n\ndata: y\n\n")
    assert events == [sse.Event(data="y")]
    assert parser.last_id is None and parser.retry_ms is None


def test_crlf_inside_one_chunk_is_one_line_end() -> None:
    _, events = feed_all("data: a\r\ndata: b\r\n\r\n")
    assert events == [sse.Event(data="a\nb")]


def test_only_the_lf_of_a_split_crlf_is_dropped() -> None:
    _, events = feed_all("data: a\r", "\ndata: b\n\n")
    assert events == [sse.Event(data="a\nb")]
