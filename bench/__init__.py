"""Side-by-side benchmark of the gateway against a bare Starlette baseline (``make bench``)."""
