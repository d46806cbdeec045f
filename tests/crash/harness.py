"""Crash harness (RELIABILITY.md T1, D1, D3, D4): SIGKILL the real gateway process under load, restart, check.

Processes, all on 127.0.0.1: the gateway (``python -m gateway serve``, SQLite, a short lease), a fake Sohar API
(tests/crash/fake_provider.py) and a fake HTTP sink (tests/crash/fake_sink.py); the gateway also writes a jsonl
sink. A load generator posts authenticated CloudEvents (some ids repeated) while the harness kills the gateway at
random moments, right after a 2xx, while a provider create is in flight, and while a sink delivery is in flight.

Invariants, checked after every kill and at the end:
  D1  every event that got a 2xx is stored;
  D3  each (event, route) started at most one provider run: one run per idempotency key, one per event;
  D4  every completed run reached every sink at least once, always under the same delivery id;
  T1  no job stays running past its lease plus the reaper period (the dispatcher's poll interval).

    python -m tests.crash.harness --kills 100      # the soak (make soak); exit 1 on any violation
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.core import signing

KILL_MODES = ("random", "after_ack", "mid_provider", "mid_sink")
SOURCE_TOKEN = "crash-source-token-0123456789"
ENV = {
    "CRASH_SOURCE_TOKEN": SOURCE_TOKEN,
    "CRASH_DATA_KEY": "crash:" + base64.b64encode(b"crash-harness-data-key-32-bytes!").decode(),
    "CRASH_OPERATOR_TOKEN": "crash-operator-token-0123456789",
    "CRASH_CLIENT_ID": "crash-client",
    "CRASH_CLIENT_SECRET": "crash-client-secret",
    "CRASH_WEBHOOK_SECRET": signing.generate_secret(bytes(range(7, 39))),
    "CRASH_SINK_SECRET": signing.generate_secret(bytes(range(9, 41))),
}
REAPER_SLACK = 2.0  # seconds allowed on top of lease + reaper period for process start and scheduling


@dataclass(kw_only=True)
class HarnessConfig:
    kills: int = 6
    seed: int = 1
    lease_seconds: float = 5.0
    poll_interval: float = 0.2  # the reaper period: expired leases are taken over on the next poll
    posters: int = 2
    post_gap: tuple[float, float] = (0.05, 0.25)
    repeat_rate: float = 0.15
    random_kill_window: tuple[float, float] = (0.2, 2.0)
    provider_knobs: dict[str, Any] = field(
        default_factory=lambda: {"slow_rate": 0.3, "delay": [0.2, 1.5], "error_rate": 0.05, "faults": ["503", "429"]}
    )
    sink_knobs: dict[str, Any] = field(
        default_factory=lambda: {"slow_rate": 0.3, "delay": [0.2, 1.5], "error_rate": 0.05, "faults": ["503", "reset"]}
    )
    settle_timeout: float = 120.0
    progress: bool = False  # print a line every 10 kills


@dataclass(kw_only=True)
class Report:
    kills: int = 0
    kill_modes: Counter[str] = field(default_factory=Counter)
    events_posted: int = 0
    events_acked: int = 0
    distinct_events_acked: int = 0
    post_failures: int = 0
    post_statuses: Counter[int] = field(default_factory=Counter)
    restart_seconds: list[float] = field(default_factory=list)
    runs: int = 0
    runs_complete: int = 0
    provider_create_calls: int = 0
    keys_created_more_than_once: int = 0
    deliveries: int = 0
    sink_receipts: int = 0
    sink_redeliveries: int = 0
    file_lines: int = 0
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        modes = ", ".join(f"{k}={v}" for k, v in sorted(self.kill_modes.items()))
        return (
            f"kills={self.kills} ({modes})\n"
            f"events: posted={self.events_posted} acked={self.events_acked} distinct_acked={self.distinct_events_acked}"
            f" post_failures={self.post_failures} (connection errors while the gateway was down, or statuses"
            f" {dict(self.post_statuses)})\n"
            f"restart: mean={_mean(self.restart_seconds):.2f} s max={max(self.restart_seconds, default=0):.2f} s\n"
            f"runs={self.runs} complete={self.runs_complete} provider_create_calls={self.provider_create_calls}"
            f" keys_created_more_than_once={self.keys_created_more_than_once}\n"
            f"deliveries={self.deliveries} http_sink_receipts={self.sink_receipts}"
            f" http_sink_redeliveries={self.sink_redeliveries} file_sink_lines={self.file_lines}\n"
            f"violations={len(self.violations)} seconds={self.seconds:.1f}"
            + "".join(f"\n  VIOLATION: {v}" for v in self.violations[:50])
        )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def gateway_config(workdir: Path, cfg: HarnessConfig, ports: dict[str, int]) -> str:
    delays = ", ".join(["0.2", "0.5"] + ["1"] * 28)
    return f"""
[server]
host = "127.0.0.1"
port = {ports["gateway"]}

[store]
url = "sqlite:///{workdir / "gateway.db"}"

[worker]
concurrency = 8
poll_interval = {cfg.poll_interval}
lease_seconds = {cfg.lease_seconds}

[worker.start_backoff]
base = 0.2
cap = 2
max_attempts = 60

[worker.fetch_backoff]
base = 0.2
cap = 2
max_attempts = 60

[worker.delivery_schedule]
delays = [{delays}]

[worker.breaker]
open_seconds = 1

[encryption]
key_env = "CRASH_DATA_KEY"

[outbound]
allow = ["127.0.0.1"]

[limits]
failed_auth = false

[operators]
tokens = [{{ name = "crash-harness", token_env = "CRASH_OPERATOR_TOKEN" }}]

[sources.load]
auth = "bearer"
token_env = "CRASH_SOURCE_TOKEN"

[providers.sohar]
kind = "sohar"
base_url = "http://127.0.0.1:{ports["provider"]}"
client_id_env = "CRASH_CLIENT_ID"
client_secret_env = "CRASH_CLIENT_SECRET"
webhook_secrets_env = ["CRASH_WEBHOOK_SECRET"]
idempotency_header = "Idempotency-Key"
timeout = 3

[flows.auto]
provider = "sohar"
template = "auto-check"

[[routes]]
name = "load"
source = "load"
type = "com.example.load"
flow = "auto"
input = {{ eventId = "$.id", n = "$.data.n" }}

[sinks.hook]
kind = "http"
url = "http://127.0.0.1:{ports["sink"]}/hook"
secret_env = "CRASH_SINK_SECRET"
timeout = 3
internal = true
on = ["COMPLETE"]

[sinks.file]
kind = "jsonl"
path = "{workdir / "out" / "file.jsonl"}"
on = ["COMPLETE"]
"""


class Processes:
    """Children of the harness; every one is killed and reaped on the way out."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.children: list[asyncio.subprocess.Process] = []

    async def spawn(self, name: str, args: Sequence[str]) -> asyncio.subprocess.Process:
        with (self.workdir / f"{name}.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *args, stdout=log, stderr=log, env=self.env, cwd=str(_repo_root())
            )
        self.children.append(proc)
        return proc

    async def kill(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def close(self) -> None:
        for proc in self.children:
            await self.kill(proc)


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


async def wait_ready(http: httpx.AsyncClient, url: str, proc: asyncio.subprocess.Process, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while loop.time() < until:
        if proc.returncode is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(url, timeout=1)).status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} was not ready within {timeout} s")


class LoadGenerator:
    """Posts CloudEvents; remembers which ids got a 2xx. Some posts repeat an id already sent."""

    def __init__(self, url: str, cfg: HarnessConfig, rng: random.Random) -> None:
        self.url = url
        self.cfg = cfg
        self.rng = rng
        self.sent: list[str] = []
        self.acked: set[str] = set()
        self.acks = 0
        self.posted = 0
        self.failures = 0
        self.statuses: Counter[int] = Counter()
        self.ack_seen = asyncio.Event()

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            await asyncio.gather(*(self._poster(http) for _ in range(self.cfg.posters)))

    async def _poster(self, http: httpx.AsyncClient) -> None:
        while True:
            if self.sent and self.rng.random() < self.cfg.repeat_rate:
                ce_id = self.rng.choice(self.sent)
            else:
                ce_id = f"ev-{len(self.sent):07d}"
                self.sent.append(ce_id)
            await self._post(http, ce_id)
            await asyncio.sleep(self.rng.uniform(*self.cfg.post_gap))

    async def _post(self, http: httpx.AsyncClient, ce_id: str) -> None:
        event = {
            "specversion": "1.0",
            "id": ce_id,
            "source": "/load",
            "type": "com.example.load",
            "data": {"n": int(ce_id[3:])},
        }
        self.posted += 1
        try:
            answer = await http.post(self.url, json=event, headers={"Authorization": f"Bearer {SOURCE_TOKEN}"})
        except httpx.HTTPError:
            self.failures += 1
            return
        if answer.status_code in (200, 202):
            self.acked.add(ce_id)
            self.acks += 1
            self.ack_seen.set()
        else:
            self.failures += 1
            self.statuses[answer.status_code] += 1


@contextlib.contextmanager
def read_db(path: Path) -> Any:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


class Harness:
    def __init__(self, cfg: HarnessConfig, workdir: Path) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.rng = random.Random(cfg.seed)
        self.report = Report()
        names = ("gateway", "provider", "sink")
        self.ports = dict(zip(names, free_ports(3), strict=True))
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.db = workdir / "gateway.db"
        self.sink_record = workdir / "sink.jsonl"
        self.file_sink = workdir / "out" / "file.jsonl"
        self.procs = Processes(workdir, {**os.environ, **ENV, "GATEWAY_LOG_LEVEL": "WARNING"})
        self.http = httpx.AsyncClient(timeout=5)
        self.gateway: asyncio.subprocess.Process | None = None
        self.ready_at = 0.0
        self.load = LoadGenerator(f"{self.urls['gateway']}/v1/events", cfg, random.Random(cfg.seed + 1))

    # processes --------------------------------------------------------------------------------

    async def start_fakes(self) -> None:
        provider = await self.procs.spawn(
            "provider",
            [
                "-m",
                "tests.crash.fake_provider",
                f"--port={self.ports['provider']}",
                f"--gateway-url={self.urls['gateway']}",
                "--secret-env=CRASH_WEBHOOK_SECRET",
                f"--seed={self.cfg.seed}",
                f"--knobs={json.dumps(self.cfg.provider_knobs)}",
            ],
        )
        sink = await self.procs.spawn(
            "sink",
            [
                "-m",
                "tests.crash.fake_sink",
                f"--port={self.ports['sink']}",
                f"--record={self.sink_record}",
                "--secret-env=CRASH_SINK_SECRET",
                f"--seed={self.cfg.seed}",
                f"--knobs={json.dumps(self.cfg.sink_knobs)}",
            ],
        )
        await wait_ready(self.http, f"{self.urls['provider']}/_stats", provider)
        await wait_ready(self.http, f"{self.urls['sink']}/_stats", sink)

    async def start_gateway(self) -> None:
        config = self.workdir / "gateway.toml"
        config.write_text(gateway_config(self.workdir, self.cfg, self.ports))
        started = time.time()
        self.gateway = await self.procs.spawn("gateway", ["-m", "gateway", "serve", f"--config={config}"])
        await wait_ready(self.http, f"{self.urls['gateway']}/readyz", self.gateway)
        self.ready_at = time.time()
        self.report.restart_seconds.append(self.ready_at - started)

    async def kill_gateway(self) -> None:
        assert self.gateway is not None
        await self.procs.kill(self.gateway)
        self.report.kills += 1

    # the run ----------------------------------------------------------------------------------

    async def run(self) -> Report:
        started = time.monotonic()
        try:
            await self.start_fakes()
            await self.start_gateway()
            load = asyncio.create_task(self.load.run())
            try:
                for i in range(self.cfg.kills):
                    await self.round(KILL_MODES[i] if i < len(KILL_MODES) else self.rng.choice(KILL_MODES))
            finally:
                load.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await load
            await self.settle()
            await self.final_checks()
        finally:
            await self.http.aclose()
            await self.procs.close()
            self.report.seconds = time.monotonic() - started
        return self.report

    async def round(self, mode: str) -> None:
        reached = await self.wait_for_kill_point(mode)
        self.report.kill_modes[mode if reached else f"{mode}(not reached)"] += 1
        self.check_no_stuck_jobs()
        await self.kill_gateway()
        self.check_acked_events_stored()
        await self.check_one_provider_run_per_event()
        await self.start_gateway()
        if self.cfg.progress and self.report.kills % 10 == 0:
            print(
                f"  {self.report.kills} kills, {len(self.load.acked)} events acked,"
                f" {len(self.report.violations)} violations",
                flush=True,
            )

    async def wait_for_kill_point(self, mode: str) -> bool:
        await asyncio.sleep(self.rng.uniform(0.1, 0.5))  # let some work start after the restart
        if mode == "random":
            await asyncio.sleep(self.rng.uniform(*self.cfg.random_kill_window))
            return True
        if mode == "after_ack":
            self.load.ack_seen.clear()
            try:
                await asyncio.wait_for(self.load.ack_seen.wait(), timeout=5)
            except TimeoutError:
                return False
            return True
        target = self.urls["provider" if mode == "mid_provider" else "sink"]
        return await self._poll_in_flight(target)

    async def _poll_in_flight(self, base: str, timeout: float = 5.0) -> bool:
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        while loop.time() < until:
            with contextlib.suppress(httpx.HTTPError):
                if (await self.http.get(f"{base}/_stats")).json()["in_flight"] > 0:
                    return True
            await asyncio.sleep(0.01)
        return False

    async def fake_stats(self, fake: str) -> dict[str, Any]:
        """A fake's counters. The fakes are never killed, but on a busy machine a kept-alive connection can be closed
        by the fake just as it is reused: such a request is sent again (a GET of counters changes nothing)."""
        url = f"{self.urls[fake]}/_stats"
        for _ in range(4):
            with contextlib.suppress(httpx.TransportError):
                stats: dict[str, Any] = (await self.http.get(url)).json()
                return stats
            await asyncio.sleep(0.2)
        last: dict[str, Any] = (await self.http.get(url)).json()  # a fifth failure is the harness's own
        return last

    async def settle(self) -> None:
        """With the load stopped and the gateway up, wait until every run and delivery is finished."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self.cfg.settle_timeout
        state: dict[str, Any] = {}
        while loop.time() < until:
            self.check_no_stuck_jobs()
            state = self._open_work()
            provider = await self.fake_stats("provider")
            state["webhooks_pending"] = provider["webhooks_pending"]
            if not any(state.values()):
                return
            await asyncio.sleep(0.5)
        self.violation(f"not settled within {self.cfg.settle_timeout} s: {state}")

    def _open_work(self) -> dict[str, Any]:
        with read_db(self.db) as db:
            runs = db.execute("SELECT COUNT(*) FROM runs WHERE status != 'COMPLETE'").fetchone()[0]
            deliveries = db.execute("SELECT COUNT(*) FROM deliveries WHERE state != 'DELIVERED'").fetchone()[0]
            jobs = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        return {"unfinished_runs": runs, "undelivered": deliveries, "jobs": jobs}

    # invariants -------------------------------------------------------------------------------

    def violation(self, text: str) -> None:
        self.report.violations.append(text)

    def check_acked_events_stored(self) -> None:
        """D1: every 2xx was preceded by a durable commit."""
        acked = set(self.load.acked)
        with read_db(self.db) as db:
            stored = {row[0] for row in db.execute("SELECT ce_id FROM events WHERE source = 'load'")}
        for ce_id in sorted(acked - stored)[:20]:
            self.violation(f"D1: event {ce_id} got a 2xx but is not stored")

    def check_no_stuck_jobs(self) -> None:
        """T1: a job whose lease ran out is taken over within the reaper period (after the gateway is up)."""
        now = time.time()
        with read_db(self.db) as db:
            rows = db.execute("SELECT id, kind, lease_expires_at FROM jobs WHERE state = 'running'").fetchall()
        for row in rows:
            expired = row["lease_expires_at"] / 1e6
            if max(expired, self.ready_at) + self.cfg.poll_interval + REAPER_SLACK < now:
                self.violation(
                    f"T1: job {row['id']} ({row['kind']}) still running {now - expired:.1f} s past its lease"
                )

    async def check_one_provider_run_per_event(self) -> dict[str, Any]:
        """D3: the provider saw at most one run per event (and so per (event, route): there is one route)."""
        stats = await self.fake_stats("provider")
        for event, runs in stats["runs_by_event"].items():
            if len(runs) > 1:
                self.violation(f"D3: event {event} started {len(runs)} provider runs: {runs}")
        return stats

    async def final_checks(self) -> None:
        self.check_acked_events_stored()
        provider = await self.check_one_provider_run_per_event()
        with read_db(self.db) as db:
            runs = [dict(r) for r in db.execute("SELECT r.*, e.ce_id FROM runs r JOIN events e ON e.id = r.event_id")]
            deliveries = [dict(r) for r in db.execute("SELECT * FROM deliveries")]
            events = db.execute("SELECT COUNT(*) FROM events WHERE source = 'load'").fetchone()[0]
            dead_jobs = db.execute("SELECT kind, last_error FROM jobs WHERE state = 'dead'").fetchall()
        for job in dead_jobs:
            self.violation(f"dead job {job['kind']}: {job['last_error']}")
        if len(runs) != events:
            self.violation(f"{events} events stored but {len(runs)} runs (one route matches every event)")
        self._check_runs_against_provider(runs, provider)
        self._check_sinks(runs, deliveries)
        self._count(runs, deliveries, provider)

    def _check_runs_against_provider(self, runs: list[dict[str, Any]], provider: dict[str, Any]) -> None:
        by_key: dict[str, str] = provider["by_key"]
        keys = {run["idempotency_key"] for run in runs}
        for run in runs:
            if by_key.get(run["idempotency_key"]) != run["provider_run_id"]:
                self.violation(
                    f"D3: run {run['id']} has provider run {run['provider_run_id']}, the provider made"
                    f" {by_key.get(run['idempotency_key'])} for its key"
                )
        for key in sorted(set(by_key) - keys):
            self.violation(f"D3: provider run {by_key[key]} has a key no gateway run holds")

    def _check_sinks(self, runs: list[dict[str, Any]], deliveries: list[dict[str, Any]]) -> None:
        """D4/D5: each completed run reached both sinks, every copy under the one delivery id of (run, sink)."""
        ids = {(d["run_id"], d["sink"]): d["id"] for d in deliveries}
        received: dict[str, set[str]] = {}
        for entry in _read_jsonl(self.sink_record):
            if not entry["signature_valid"] or entry["webhook_id"] != entry["idempotency_key"]:
                self.violation(f"D5: sink got a bad signature or key for delivery {entry['webhook_id']}")
            received.setdefault(entry["run_id"], set()).update({entry["webhook_id"], entry["delivery_id"]})
        written: dict[str, set[str]] = {}
        for line in _read_jsonl(self.file_sink):
            written.setdefault(line["run"]["id"], set()).add(line["delivery_id"])
        for run in runs:
            if run["status"] != "COMPLETE":
                continue
            for sink, seen in (("hook", received), ("file", written)):
                expected = ids.get((run["id"], sink))
                got = seen.get(run["id"], set())
                if expected is None or got != {expected}:
                    self.violation(f"D4: run {run['id']} sink {sink}: delivery {expected}, sink saw {sorted(got)}")
        known = {run["id"] for run in runs}
        for run_id in sorted((set(received) | set(written)) - known):
            self.violation(f"D4: a sink got run {run_id}, which the gateway does not know")

    def _count(self, runs: list[dict[str, Any]], deliveries: list[dict[str, Any]], provider: dict[str, Any]) -> None:
        report = self.report
        report.events_posted = self.load.posted
        report.events_acked = self.load.acks
        report.distinct_events_acked = len(self.load.acked)
        report.post_failures = self.load.failures
        report.post_statuses = self.load.statuses
        for status, count in self.load.statuses.items():
            if status >= 500:
                self.violation(f"POST /v1/events answered {status} {count} time(s)")
        report.runs = len(runs)
        report.runs_complete = sum(1 for run in runs if run["status"] == "COMPLETE")
        calls: dict[str, int] = provider["create_calls"]
        report.provider_create_calls = sum(calls.values())
        report.keys_created_more_than_once = sum(1 for n in calls.values() if n > 1)
        report.deliveries = len(deliveries)
        receipts = _read_jsonl(self.sink_record)
        report.sink_receipts = len(receipts)
        report.sink_redeliveries = len(receipts) - len({r["webhook_id"] for r in receipts})
        report.file_lines = len(_read_jsonl(self.file_sink))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def run_harness(cfg: HarnessConfig, workdir: Path) -> Report:
    return await Harness(cfg, workdir).run()


@contextlib.asynccontextmanager
async def _workdir(given: str | None) -> AsyncIterator[Path]:
    if given:
        path = Path(given) / time.strftime("run-%Y%m%d-%H%M%S")
        path.mkdir(parents=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="gateway-crash-") as tmp:
        yield Path(tmp)


async def _main(args: argparse.Namespace) -> int:
    cfg = HarnessConfig(kills=args.kills, seed=args.seed, progress=True)
    async with _workdir(args.workdir) as workdir:
        report = await run_harness(cfg, workdir)
    print(report.summary())
    return 1 if report.violations else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crash-harness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--workdir", default=None, help="keep logs and the database here (default: a temp dir)")
    args = parser.parse_args(argv)
    print(f"crash harness: kills={args.kills} seed={args.seed}", flush=True)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    raise SystemExit(main())
