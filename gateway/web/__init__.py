"""The HTTP edge: Starlette routes that parse requests, call the service and render JSON, and the operator
UI (``ui``, ``ui_pages``). ``app`` builds the route table; ``status`` maps errors to HTTP statuses.

May import ``runtime`` (the assembled services) and everything below it; never ``serving`` or ``cli``."""
