"""The composition root: ``wiring`` builds the running gateway (store, providers, sinks, engine, desk) from
settings; ``entropy`` is the pooled randomness it hands out.

May import every package below it (``engine``, ``desk``, ``config``, plug-ins, ``store``, ``outbound``,
``observability``, ``core``, ``domain``); never ``web``, ``serving`` or ``cli``."""
