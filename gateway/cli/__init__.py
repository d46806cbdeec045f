"""The ``gateway`` command: serve, check-config, migrate. ``main(argv) -> int`` (exit 2 on bad input).

Sub-commands live beside it: ``ops`` (runs, deliveries, sinks), ``maintenance`` (purge, keys) and ``desk``
(operators, keys, audit). The top of the layers: may import any package."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.cli import desk as desk_cli
from gateway.cli import ops as ops_cli
from gateway.config.settings import Settings, describe, load_settings
from gateway.domain import errors
from gateway.store import transfer

log = logging.getLogger("gateway")
DEFAULT_CONFIG = "config.example.toml"


class _Parser(argparse.ArgumentParser):
    """Exits 2 with a one-line message; every ``--help`` shows each option's default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"gateway: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gateway", description="Webhook-driven integration gateway for flow APIs.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    config = os.environ.get("GATEWAY_CONFIG", DEFAULT_CONFIG)
    config_help = "the gateway config file ($GATEWAY_CONFIG)"
    serve = commands.add_parser("serve", help="run the HTTP server and the worker")
    serve.add_argument("--config", default=config, help=config_help)
    serve.add_argument("--host", default=None, help="address to listen on (None: [server] host)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (None: [server] port)")
    serve.add_argument(
        "--allow-demo",
        action="store_true",
        help="serve a demo-mode config on an address other than loopback (its tokens are public: never real data)",
    )
    serve.add_argument(
        "--role",
        choices=["all", "api", "worker"],
        default="all",
        help="what this process runs: the HTTP API, the job worker, or both",
    )
    serve.add_argument(
        "--processes", type=int, default=1, help="API processes accepting from one socket (README: Command line)"
    )
    check = commands.add_parser("check-config", help="validate a config file and print it, secrets masked")
    check.add_argument("path", help="the config file to check")
    migrate = commands.add_parser("migrate", help="apply pending store migrations")
    migrate.add_argument("--config", default=config, help=config_help)
    purge = commands.add_parser("purge", help="drop payloads of runs that ended before the retention period")
    purge.add_argument("--config", default=config, help=config_help)
    key_commands = desk_cli.add_commands(commands, config)
    rotate = key_commands.add_parser("rotate-data", help="re-encrypt every stored payload under the current data key")
    rotate.add_argument("--config", default=config, help=config_help)
    generate = key_commands.add_parser("generate-data-key", help="print a new random data key")
    generate.add_argument("key_id", help="a short name for the key, e.g. 2026-11")
    transfer.add_parser(commands)
    ops_cli.add_commands(commands, config)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = os.environ if environ is None else environ
    if args.command == "migrate-store":
        return transfer.run(args)
    try:
        if args.command == "check-config":
            return check_config(args.path, env)
        if args.command == "keys" and args.keys_command == "generate-data-key":
            return generate_data_key(args.key_id)
        settings = load_settings(args.config, env, port=getattr(args, "port", None))
    except errors.ConfigError as exc:
        print(f"gateway: {exc.message}", file=sys.stderr)
        return 2
    if getattr(args, "desk_command", None) is not None:
        return desk_cli.run(args, settings)
    if getattr(args, "ops_command", None) is not None:
        return ops_cli.run(args, settings)
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command in ("purge", "keys"):
        from gateway.cli import maintenance as maintenance_cli

        return asyncio.run(maintenance_cli.run(args, settings))
    return serve(settings, host=args.host, allow_demo=args.allow_demo, role=args.role, processes=args.processes)


def generate_data_key(key_id: str) -> int:
    from gateway.store.sealing import generate_data_key as generate
    from gateway.store.sealing import parse_data_key

    key = generate(key_id)
    try:
        parse_data_key(key)
    except ValueError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    print(key)
    return 0


def check_config(path: str, environ: Mapping[str, str]) -> int:
    settings = load_settings(path, environ)
    print(json.dumps(describe(settings), indent=2, sort_keys=True))
    if settings.dev_secrets_used:
        print(f"warning: development secrets in use for {', '.join(settings.dev_secrets_used)}", file=sys.stderr)
    return 0


async def _migrate(settings: Settings) -> int:
    applied = await _apply_migrations(settings)
    print(f"applied {applied} migration(s)")
    return 0


async def _apply_migrations(settings: Settings) -> int:
    from gateway.store import open_store

    store = await open_store(settings.store.url, busy_timeout_ms=settings.store.busy_timeout_ms)
    try:
        return await store.migrate()
    finally:
        await store.aclose()


def demo_refusal(settings: Settings, host: str, *, allow_demo: bool) -> str | None:
    """Why ``serve`` refuses: demo mode (public demo tokens, the sandbox) reachable from other machines."""
    if settings.mode != "demo" or allow_demo or _loopback(host):
        return None
    return (
        f"refusing to serve a demo-mode config on {host}: its tokens are public. Listen on 127.0.0.1, set"
        ' mode = "production", or pass --allow-demo to expose the demo on purpose'
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    settings: Settings, *, host: str | None = None, allow_demo: bool = False, role: str = "all", processes: int = 1
) -> int:
    from gateway.observability import logs
    from gateway.serving.processes import plan

    refusal = demo_refusal(settings, host or settings.server.host, allow_demo=allow_demo)
    if refusal is not None:
        print(f"gateway: {refusal}", file=sys.stderr)
        return 2
    try:
        roles = plan(role, processes)
    except ValueError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    if len(roles) > 1 and settings.metrics.port is not None:
        print("gateway: [metrics] port serves one process's metrics: use it with --processes 1", file=sys.stderr)
        return 2
    logs.configure(os.environ.get("GATEWAY_LOG_LEVEL", "INFO"))
    if settings.dev_secrets_used:
        log.warning(
            "development secrets in use; never run this way in production",
            extra={"variables": ",".join(settings.dev_secrets_used)},
        )
    bind = host or settings.server.host
    log.info("serving", extra={"host": bind, "port": settings.server.port, "role": role, "processes": processes})
    if len(roles) == 1:
        _serve_role(settings, bind, roles[0], None)
        return 0
    from gateway.serving.processes import serve_group

    asyncio.run(_apply_migrations(settings))  # once, before the fork, not raced by the whole group
    return serve_group(settings, bind, roles, lambda one, sock: _serve_role(settings, bind, one, sock))


def _serve_role(settings: Settings, host: str, role: str, sock: socket.socket | None) -> None:
    from gateway.serving import server as serving

    if role == "worker":
        serving.run(serving.serve_worker(settings))
    else:
        serving.run(serving.serve_gateway(settings, host, run_background=role == "all", sock=sock))


if __name__ == "__main__":
    raise SystemExit(main())
