"""``gateway operators ...``, ``gateway keys ...`` and ``gateway audit ...``: the desk's admin commands.

Bad input prints a message and exits 2; a broken audit chain exits 1. Keys are printed once, at creation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TextIO

from gateway.config.settings import Settings
from gateway.desk import access
from gateway.desk.gatekeeper import Gatekeeper
from gateway.domain import audit, errors
from gateway.domain.ports import SystemClock
from gateway.store import audit_sql, open_store
from gateway.store.access_sql import AccessStore
from gateway.store.sqlstore import SqlStore

ACTOR = "cli"
MIN_PASSWORD = 12
Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def add_commands(commands: Any, default_config: str) -> Any:
    """Register the desk's commands on the top-level subparsers; returns the ``keys`` group for more key commands."""
    operators = _group(commands, "operators", "manage operators who use the review desk")
    add = _leaf(operators, "add", "add an operator", _add_operator, default_config)
    add.add_argument("name", help="the operator's name (their login)")
    add.add_argument("--role", action="append", required=True, choices=access.ROLES, help="repeat for several")
    add.add_argument("--password-stdin", action="store_true", help="read a UI password from standard input")
    _leaf(operators, "list", "list operators", _list_operators, default_config)

    keys = _group(commands, "keys", "manage API keys")
    create = _leaf(keys, "create", "create an API key (printed once)", _create_key, default_config)
    create.add_argument("--operator", required=True, help="the operator the key acts for")
    create.add_argument("--scope", action="append", required=True, choices=access.SCOPES, help="repeat for several")
    create.add_argument("--expires-days", type=int, default=90, help="days until the key expires")
    revoke = _leaf(keys, "revoke", "revoke an API key", _revoke_key, default_config)
    revoke.add_argument("key_id", help="the key's id, as `gateway keys list` prints it")
    _leaf(keys, "list", "list API keys (never their secrets)", _list_keys, default_config)

    trail = _group(commands, "audit", "check and export the audit trail")
    _leaf(trail, "verify", "check the hash chain; names the first broken link", _verify, default_config)
    export = _leaf(trail, "export", "write the audit trail as JSON lines", _export, default_config)
    export.add_argument("--out", required=True, help="file to write ('-' for standard output)")
    return keys


def _group(commands: Any, name: str, text: str) -> Any:
    parser = commands.add_parser(name, help=text)
    return parser.add_subparsers(dest=f"{name}_command", required=True, parser_class=type(parser))


def _leaf(group: Any, name: str, text: str, command: Command, default_config: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=text)
    parser.add_argument("--config", default=default_config, help="the gateway config file ($GATEWAY_CONFIG)")
    parser.set_defaults(desk_command=command)
    return parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    command: Command = args.desk_command
    try:
        return asyncio.run(command(args, settings))
    except errors.GatewayError as exc:
        print(f"gateway: {exc.message}", file=sys.stderr)
        return 2


@asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[SqlStore]:
    from gateway.runtime.wiring import sealer_for

    store = await open_store(
        settings.store.url, sealer=sealer_for(settings), busy_timeout_ms=settings.store.busy_timeout_ms
    )
    try:
        await store.migrate()
        yield store
    finally:
        await store.aclose()


def _gatekeeper(settings: Settings, store: SqlStore) -> Gatekeeper:
    return Gatekeeper(
        settings=settings, store=AccessStore(store.db), clock=SystemClock(), token_bytes=secrets.token_bytes
    )


async def _add_operator(args: argparse.Namespace, settings: Settings) -> int:
    password = _read_password(sys.stdin) if args.password_stdin else None
    async with _store(settings) as store:
        operator = await _gatekeeper(settings, store).add_operator(args.name, args.role, password, actor=ACTOR)
    print(f"added operator {operator.name} ({', '.join(sorted(operator.roles))})")
    return 0


def _read_password(stream: TextIO) -> str:
    password = stream.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise errors.InvalidInput(f"the password must have at least {MIN_PASSWORD} characters")
    return password


async def _list_operators(args: argparse.Namespace, settings: Settings) -> int:
    async with _store(settings) as store:
        operators = await AccessStore(store.db).list_operators()
    for operator in operators:
        state = "disabled" if operator.disabled_at else "active"
        login = "password" if operator.password_hash else "no UI login"
        print(f"{operator.name}\t{' '.join(sorted(operator.roles))}\t{state}\t{login}")
    return 0


async def _create_key(args: argparse.Namespace, settings: Settings) -> int:
    async with _store(settings) as store:
        key, token = await _gatekeeper(settings, store).create_key(
            args.operator, args.scope, args.expires_days, actor=ACTOR
        )
    print(token)
    print(f"key {key.id} for {key.operator}, expires {key.expires_at:%Y-%m-%d}; shown once", file=sys.stderr)
    return 0


async def _revoke_key(args: argparse.Namespace, settings: Settings) -> int:
    async with _store(settings) as store:
        await _gatekeeper(settings, store).revoke_key(args.key_id, actor=ACTOR)
    print(f"revoked key {args.key_id}")
    return 0


async def _list_keys(args: argparse.Namespace, settings: Settings) -> int:
    async with _store(settings) as store:
        keys = await AccessStore(store.db).list_keys()
    for key in keys:
        state = "revoked" if key.revoked_at else f"expires {key.expires_at:%Y-%m-%d}"
        print(f"{key.id}\t{key.prefix}_…\t{key.operator}\t{' '.join(sorted(key.scopes))}\t{state}")
    return 0


async def _verify(args: argparse.Namespace, settings: Settings) -> int:
    async with _store(settings) as store:
        verdict = audit.verify([record async for record in audit_sql.records(store.db)])
    if verdict.ok:
        print(f"audit chain ok: {verdict.checked} record(s)")
        return 0
    print(f"audit chain broken at seq {verdict.broken_at}: {verdict.reason}", file=sys.stderr)
    return 1


async def _export(args: argparse.Namespace, settings: Settings) -> int:
    count = 0
    async with _store(settings) as store:
        out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
        try:
            async for record in audit_sql.records(store.db):
                out.write(json.dumps(record.as_dict(), sort_keys=True, separators=(",", ":")) + "\n")
                count += 1
        finally:
            if out is not sys.stdout:
                out.close()
    print(f"exported {count} record(s)", file=sys.stderr)
    return 0
