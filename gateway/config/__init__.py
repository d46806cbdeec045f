"""Settings: one TOML file (plus environment secrets) parsed into frozen dataclasses (``settings``), with the
pieces it is made of: encryption and retention (``protection``), HTTP limits (``server_limits``) and the
desk's own table (``desk``). Parsing is pure; every problem is collected, not raised one at a time.

May import the plug-ins (``providers``, ``sinks``, ``sandbox``: each parses its own table),
``observability`` (its settings), ``store`` (data keys), ``outbound``, ``core`` and ``domain``."""
