"""The vocabulary every layer shares: runs, events, reviews and the desk's records (``model``, ``desk``),
the hash-chained audit trail (``audit``), the ports the engine talks through (``ports``, ``streaming``) and
the error taxonomy (``errors``).

Pure: no I/O, no clock reads, no randomness. May import nothing from gateway but itself."""
