"""The HTTP edge: Starlette routes that parse requests, call the service and render JSON, and the operator
UI (``ui``, ``ui_pages``). Each JSON route is declared once, on its handler (``operation``); ``api`` derives the
guarded routes and the OpenAPI document from those, ``app`` builds the route table; ``status`` maps errors to HTTP
statuses.

May import ``runtime`` (the assembled services) and everything below it; never ``serving`` or ``cli``."""
