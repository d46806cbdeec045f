"""Answers lost on the way back from the embedded emulators (issue 10: "lost answers after the work was applied").

``LossyTransport`` is the in-process transport of ``tests.support.running_gateway``: requests to the gateway's own
host reach its embedded emulators (Sohar, Reminix, TransactionLink, inference.sh). ``lose`` names calls whose
answer is replaced by a fault (``tests.faults.Fault``): by default after the emulator did the work (a create that
made a run, a resume that resumed), or, with ``applied=False``, instead of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from tests.faults import Fault
from tests.support import SelfTransport


@dataclass
class Loss:
    method: str
    path: re.Pattern[str]
    fault: Fault
    times: int
    applied: bool


class LossyTransport(SelfTransport):
    def __init__(self) -> None:
        super().__init__()
        self.losses: list[Loss] = []
        self.lost: list[httpx.Request] = []  # the requests whose answers were lost
        self.seen: list[httpx.Request] = []  # every request

    def calls(self, method: str, path: str) -> int:
        """How many requests of ``method`` on a path matching the regex ``path`` were sent."""
        return sum(1 for r in self.seen if r.method == method and re.search(path, r.url.path))

    def lose(self, method: str, path: str, fault: Fault, *, times: int = 1, applied: bool = True) -> None:
        """The next ``times`` calls of ``method`` on a path matching the regex ``path`` (searched) get ``fault``."""
        self.losses.append(Loss(method=method, path=re.compile(path), fault=fault, times=times, applied=applied))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        loss = next((x for x in self.losses if x.times > 0 and self._matches(x, request)), None)
        if loss is None:
            return await super().handle_async_request(request)
        loss.times -= 1
        self.lost.append(request)
        if loss.applied:
            done = await super().handle_async_request(request)
            await done.aread()
        return await loss.fault.answer(request)

    @staticmethod
    def _matches(loss: Loss, request: httpx.Request) -> bool:
        return request.method == loss.method and loss.path.search(request.url.path) is not None
