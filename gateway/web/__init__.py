"""The HTTP edge: Starlette routes that parse requests, call the service and render JSON."""
