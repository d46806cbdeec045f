"""Serve one benchmark subject with the gateway's own uvicorn settings (``gateway.serving.server``).

python -m bench.serve baseline PORT
python -m bench.serve gateway PORT CONFIG [--no-worker]
"""

from __future__ import annotations

import os
import sys

import uvicorn

from gateway.config.settings import load_settings
from gateway.observability import logs
from gateway.serving import server as serving


async def _baseline(port: int) -> None:
    from bench.baseline import app

    await uvicorn.Server(serving.server_config(app, host="127.0.0.1", port=port)).serve()


def main(argv: list[str]) -> None:
    kind, port = argv[0], int(argv[1])
    logs.configure(os.environ.get("GATEWAY_LOG_LEVEL", "INFO"))
    if kind == "baseline":
        serving.run(_baseline(port))
        return
    settings = load_settings(argv[2], os.environ, port=port)
    serving.run(serving.serve_gateway(settings, "127.0.0.1", run_background="--no-worker" not in argv))


if __name__ == "__main__":
    main(sys.argv[1:])
