"""What an operator sees of a running gateway: structured logs, Prometheus metrics and OpenTelemetry traces.

May import ``gateway.domain`` and ``gateway.core``."""
