"""The run engine: accepting events and starting runs (``service``, ``starts``), the durable job handlers
(``jobs``, ``dispatcher``), following runs by stream or poll (``follower``, ``reconciler``, ``sweep``,
``stuck``), delivery to sinks (``sink_guard``, ``outcomes``), circuit breakers (``breakers``) and
housekeeping.

May import ``desk`` (alerts), ``config``, the plug-ins, ``store``, ``outbound``, ``observability``,
``core`` and ``domain``; never ``runtime``, ``web``, ``serving`` or ``cli``."""
