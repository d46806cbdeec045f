"""JSON log lines: one record is one line, whatever characters a client put in a logged field."""

from __future__ import annotations

import json
import logging

from gateway.observability.logs import JsonFormatter


def test_a_record_with_unicode_line_breaks_stays_one_ascii_line() -> None:
    record = logging.LogRecord("gateway.http", logging.INFO, "", 0, "request", None, None)
    record.path = "/v1/runs/\x85\u2028\u2029\x1c\n\ré"
    text = JsonFormatter().format(record)
    assert text.isascii()
    assert text.splitlines() == [text]
    assert json.loads(text)["path"] == record.path


def test_an_ascii_record_is_compact_json() -> None:
    record = logging.LogRecord("gateway.http", logging.INFO, "", 0, "request", None, None)
    record.status = 200
    text = JsonFormatter().format(record)
    assert json.loads(text)["status"] == 200
    assert ", " not in text and '": ' not in text
