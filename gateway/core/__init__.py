"""Pure domain logic: no I/O, no clock reads, no randomness. Lifecycle, routing, review rules, retry and
rate arithmetic, signatures, CloudEvents, JSON text limits, subject templates, the building blocks of
settings parsing (``config_types``) and fast JSON encoding.

May import ``gateway.domain`` only."""

from __future__ import annotations
