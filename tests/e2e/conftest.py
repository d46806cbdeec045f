"""Fixtures shared by the real-server tests."""

from __future__ import annotations

from tests.e2e.test_quickstart import server

__all__ = ["server"]
