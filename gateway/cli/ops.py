"""Operations from the command line, against the configured store (no server needed):
``gateway deliveries list|show|retry|replay``, ``gateway runs list|show|retry|cancel``, ``gateway jobs list|retry``,
``gateway sinks list|enable``. Lists print one tab-separated line per item, or JSON with ``--json``; payloads are
never printed. Changes are audited with the actor ``cli``. Bad input prints a message and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any

from gateway.config.settings import Settings
from gateway.domain import errors
from gateway.domain.audit import AuditEntry
from gateway.domain.model import DeliveryState, JobKind, RunStatus, SinkState
from gateway.domain.ports import ReplayQuery, RunFilter
from gateway.runtime.wiring import Services, open_services
from gateway.web import render
from gateway.web.operations import attempt_json, job_json, revive, sink_json

ACTOR = "cli"
Command = Callable[[argparse.Namespace, Services], Coroutine[Any, Any, Any]]


def add_commands(commands: Any, default_config: str) -> None:
    deliveries = _group(commands, "deliveries", "list, inspect, retry and replay sink deliveries")
    listing = _leaf(deliveries, "list", "list deliveries, newest first", _list_deliveries, default_config)
    listing.add_argument("--state", choices=[s.value for s in DeliveryState], help="only deliveries in this state")
    listing.add_argument("--sink", help="only deliveries to this sink")
    listing.add_argument("--run-id", help="only deliveries of this run")
    _paging(listing)
    show = _leaf(deliveries, "show", "one delivery with every attempt", _show_delivery, default_config)
    show.add_argument("delivery_id", help="a delivery id (dlv_...)")
    retry = _leaf(
        deliveries, "retry", "send a DEAD or DELIVERED delivery again, same id", _retry_delivery, default_config
    )
    retry.add_argument("delivery_id", help="a delivery id (dlv_...)")
    replay = _leaf(deliveries, "replay", "send finished deliveries again in bulk, same ids", _replay, default_config)
    replay.add_argument("--sink", help="only deliveries to this sink")
    replay.add_argument("--state", choices=["DEAD", "DELIVERED"], default="DEAD", help="which finished deliveries")
    replay.add_argument("--created-after", type=_time, help="ISO 8601 time with an offset")
    replay.add_argument("--created-before", type=_time, help="ISO 8601 time with an offset")
    replay.add_argument("--limit", type=_count(1000), default=100, help="at most this many (1-1000)")

    runs = _group(commands, "runs", "list, inspect, retry and cancel runs")
    listing = _leaf(runs, "list", "list runs, newest first", _list_runs, default_config)
    listing.add_argument("--status", choices=[s.value for s in RunStatus], help="only runs in this status")
    listing.add_argument("--flow", help="only runs of this flow")
    _paging(listing)
    show = _leaf(runs, "show", "one run with its timeline and deliveries (no payloads)", _show_run, default_config)
    show.add_argument("run_id", help="a run id (run_...)")
    retry = _leaf(runs, "retry", "start a FAILED_TO_START run again (same idempotency key)", _retry_run, default_config)
    retry.add_argument("run_id", help="a run id (run_...)")
    cancel = _leaf(runs, "cancel", "cancel a live run through its provider", _cancel_run, default_config)
    cancel.add_argument("run_id", help="a run id (run_...)")

    jobs = _group(commands, "jobs", "list and retry buried (dead) jobs")
    listing = _leaf(jobs, "list", "list jobs that gave up, oldest first", _list_jobs, default_config)
    listing.add_argument("--dead", action="store_true", help="only dead jobs (the only jobs listed; kept for clarity)")
    listing.add_argument("--kind", choices=[k.value for k in JobKind], help="only jobs of this kind")
    listing.add_argument("--limit", type=_count(500), default=50, help="at most this many (1-500)")
    retry = _leaf(jobs, "retry", "queue a dead job again (a delivery job: its delivery)", _retry_job, default_config)
    retry.add_argument("job_id", type=int, help="a job id, from `gateway jobs list`")

    sinks = _group(commands, "sinks", "see and enable sinks")
    _leaf(sinks, "list", "every configured sink: disabled or not", _list_sinks, default_config)
    enable = _leaf(
        sinks, "enable", "enable a sink disabled after 410 Gone or too long failing", _enable, default_config
    )
    enable.add_argument("sink", help="a sink name from the config")


def run(args: argparse.Namespace, settings: Settings) -> int:
    command: Command = args.ops_command
    try:
        result = asyncio.run(_with_services(command, args, settings))
    except errors.GatewayError as exc:
        print(f"gateway: {exc.message}", file=sys.stderr)
        return 2
    _print(result, args.json)
    return 0


async def _with_services(command: Command, args: argparse.Namespace, settings: Settings) -> Any:
    async with open_services(settings) as services:
        return await command(args, services)


def _print(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return
    rows = result if isinstance(result, list) else [result]
    for row in rows:
        print("\t".join("" if v is None else str(v) for k, v in row.items() if not isinstance(v, list | dict)))
        for key, value in row.items():
            if isinstance(value, list):
                for item in value:
                    print(f"  {key}\t" + "\t".join("" if v is None else str(v) for v in item.values()))


# deliveries -------------------------------------------------------------------------------------


async def _list_deliveries(args: argparse.Namespace, svc: Services) -> list[dict[str, Any]]:
    state = DeliveryState(args.state) if args.state else None
    found = await svc.store.list_deliveries(
        state=state, run_id=args.run_id, sink=args.sink, limit=args.limit, before=args.before
    )
    return [render.delivery(d) for d in found]


async def _show_delivery(args: argparse.Namespace, svc: Services) -> dict[str, Any]:
    delivery = await svc.store.get_delivery(args.delivery_id)
    if delivery is None:
        raise errors.NotFound(f"no delivery {args.delivery_id}")
    attempts = await svc.ops.attempts(delivery.id)
    return {**render.delivery(delivery), "attempt_log": [attempt_json(a) for a in attempts]}


async def _retry_delivery(args: argparse.Namespace, svc: Services) -> dict[str, Any]:
    delivery = await svc.gateway.retry_delivery(args.delivery_id)
    await _audit(svc, "delivery_replayed", [f"delivery:{delivery.id}"])
    return render.delivery(delivery)


async def _replay(args: argparse.Namespace, svc: Services) -> list[dict[str, Any]]:
    query = ReplayQuery(
        state=DeliveryState(args.state),
        sink=args.sink,
        created_after=args.created_after,
        created_before=args.created_before,
        limit=args.limit,
    )
    replayed = await svc.gateway.replay_deliveries(query)
    details = {"sink": args.sink, "state": args.state, "limit": args.limit}
    await _audit(svc, "delivery_replayed", [f"delivery:{d.id}" for d in replayed], details)
    return [render.delivery(d) for d in replayed]


# runs -------------------------------------------------------------------------------------------


async def _list_runs(args: argparse.Namespace, svc: Services) -> list[dict[str, Any]]:
    status = RunStatus(args.status) if args.status else None
    found = await svc.store.list_runs(RunFilter(status=status, flow=args.flow, before=args.before, limit=args.limit))
    return [render.run_summary(run) for run in found]


async def _show_run(args: argparse.Namespace, svc: Services) -> dict[str, Any]:
    run = await svc.gateway.get_run(args.run_id)
    timeline = await svc.store.timeline(run.id)
    found = await svc.store.list_deliveries(state=None, run_id=run.id, sink=None, limit=100, before=None)
    return {
        **render.run_summary(run),
        "timeline": [render.transition(step) for step in timeline],
        "deliveries": [render.delivery(d) for d in found],
    }


async def _retry_run(args: argparse.Namespace, svc: Services) -> dict[str, Any]:
    run = await svc.gateway.retry_start(args.run_id)
    await _audit(svc, "run_retried", [f"run:{run.id}"])
    return render.run_summary(run)


async def _cancel_run(args: argparse.Namespace, svc: Services) -> dict[str, Any]:
    run = await svc.gateway.request_cancel(args.run_id)
    await _audit(svc, "run_cancel_requested", [f"run:{run.id}"])
    return {**render.run_summary(run), "cancel": "requested"}


# jobs and sinks ---------------------------------------------------------------------------------


async def _list_jobs(args: argparse.Namespace, svc: Services) -> list[dict[str, Any]]:
    kind = JobKind(args.kind) if args.kind else None
    return [job_json(job) for job in await svc.ops.dead_jobs(kind=kind, limit=args.limit, after=None)]


async def _retry_job(args: argparse.Namespace, svc: Services) -> dict[str, Any]:
    job = await svc.ops.get_job(args.job_id)
    if job is None:
        raise errors.NotFound(f"no job {args.job_id}")
    revived = await revive(svc, job)
    await _audit(svc, "job_retried", [f"job:{job.id}"])
    return job_json(revived)


async def _list_sinks(args: argparse.Namespace, svc: Services) -> list[dict[str, Any]]:
    states = {s.sink: s for s in await svc.ops.sink_states()}
    return [sink_json(states.get(name) or SinkState(sink=name)) for name in svc.settings.sinks]


async def _enable(args: argparse.Namespace, svc: Services) -> dict[str, Any]:
    if args.sink not in svc.settings.sinks:
        raise errors.NotFound(f"no sink named {args.sink!r}")
    if not await svc.guard.enable(args.sink):
        raise errors.Conflict(f"sink {args.sink} is not disabled")
    await _audit(svc, "sink_enabled", [f"sink:{args.sink}"])
    return sink_json(await svc.ops.sink_state(args.sink))


# shared -----------------------------------------------------------------------------------------


async def _audit(svc: Services, action: str, objects: Sequence[str], details: dict[str, Any] | None = None) -> None:
    assert svc.desk is not None
    entries = [AuditEntry(actor=ACTOR, action=action, object=obj, details=details or {}) for obj in objects]
    if entries:
        await svc.desk.desk.access.audit(entries, svc.clock.now())


def _group(commands: Any, name: str, text: str) -> Any:
    parser = commands.add_parser(name, help=text, description=text)
    return parser.add_subparsers(dest=f"{name}_command", required=True, parser_class=type(parser))


def _leaf(group: Any, name: str, text: str, command: Command, default_config: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=text, description=text)
    parser.add_argument("--config", default=default_config, help="the gateway config file ($GATEWAY_CONFIG)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tab-separated lines")
    parser.set_defaults(ops_command=command)
    return parser


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=_count(500), default=50, help="at most this many (1-500)")
    parser.add_argument("--before", help="only items older than this id (the last id of the previous page)")


def _count(maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= maximum:
            raise argparse.ArgumentTypeError(f"must be an integer from 1 to {maximum}")
        return int(text)

    return parse


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError("must be an ISO 8601 time, e.g. 2026-11-22T09:00:00Z") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("needs an offset (Z or +01:00)")
    return moment
