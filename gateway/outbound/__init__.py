"""Calling other services over HTTP: the transport that enforces the network policy (``transport``) and
the request/answer helpers that providers and sinks share (``http``: retry-after, error mapping).

May import ``gateway.domain`` and ``gateway.core``."""
