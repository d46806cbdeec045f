"""Running the gateway as processes: the uvicorn server and worker loop (``server``), the process group
for ``serve --processes`` (``processes``) and the raw-ASGI limits in front of the app (``http_guard``).

May import ``web``, ``runtime`` and everything below them; never ``cli``."""
