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
