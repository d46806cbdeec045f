"""The Database seam: what every store module asks of a database (``Database``) and of one transaction
(``Tx``). ``db`` (SQLite, with the ``groupcommit`` writer) and ``pg`` (PostgreSQL) implement it; neither
this module nor its users know which one they hold."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

Row = Mapping[str, Any]
Params = Sequence[Any]
T = TypeVar("T")


class Tx(Protocol):
    dialect: str

    async def execute(self, sql: str, params: Params = ()) -> int: ...

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...


class Database(Protocol):
    dialect: str

    def write(self) -> Any: ...  # async context manager yielding Tx

    async def transact(self, body: Callable[[Tx], Awaitable[T]]) -> T: ...  # body awaits nothing but its Tx

    def read(self) -> Any: ...

    def on_wake(self, callback: Callable[[], None]) -> None: ...  # work queued elsewhere (other replicas)

    def on_commit(self, callback: Callable[[float, int], None]) -> None: ...  # (seconds, writes committed together)

    async def aclose(self) -> None: ...
