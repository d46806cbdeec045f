"""Pure domain logic: no I/O, no clock reads, no randomness."""

from __future__ import annotations
