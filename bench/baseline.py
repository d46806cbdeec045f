"""The bare baseline: Starlette parses the JSON body and answers 202. Nothing is stored."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def ingest(request: Request) -> Response:
    json.loads(await request.body())
    return JSONResponse({"accepted": True}, status_code=202)


app = Starlette(routes=[Route("/v1/events", ingest, methods=["POST"])])
