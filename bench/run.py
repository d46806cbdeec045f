"""``make bench``: the baseline, then the gateway, measured one after the other with the same uvicorn settings
and the same load generator; prints every figure beside its target and writes JSON under bench/results/.

    python -m bench.run [--seconds 5] [--scale-runs 1000000] [--e2e-runs 10000] [--label NAME] [--no-scale]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import loader, loadgen, workload
from bench.procs import Process, free_port
from gateway.store.migrate import migrations

HOST = "127.0.0.1"
CONNECTIONS = 64
ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.workdir).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.wrk = shutil.which("wrk") if not args.python_loadgen else None
        self.figures: dict[str, Any] = {}
        self.rss: dict[str, float] = {}

    # subjects ---------------------------------------------------------------------------------------------

    def gateway(self, db: Path, fake_port: int, *, worker: bool, name: str) -> Process:
        config = self.work / f"{name}.toml"
        config.write_text(workload.config_text(str(db), fake_port))
        port = free_port()
        args = [str(port), str(config)] + ([] if worker else ["--no-worker"])
        return Process("bench.serve", ["gateway", *args], port=port, log=self.work / f"{name}.log")

    def served(self, db: Path, fake_port: int, *, role: str, processes: int, name: str, port: int = 0) -> Process:
        """``gateway serve --role ROLE --processes N``, as an operator runs it (the two-process table)."""
        config = self.work / f"{name}.toml"
        config.write_text(workload.config_text(str(db), fake_port))
        port = port or free_port()
        args = ["serve", "--config", str(config), "--port", str(port), "--role", role, "--processes", str(processes)]
        ready = port if role != "worker" else None
        proc = Process("gateway", args, port=ready, log=self.work / f"{name}.log")
        if ready is not None:  # the socket is bound before the API processes start: wait until they answer
            _wait_http(f"http://{HOST}:{port}/healthz", timeout=60)
        return proc

    def fresh_db(self, name: str) -> Path:
        db = self.work / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return db

    # load -------------------------------------------------------------------------------------------------

    def max_rate(self, port: int, prefix: str) -> dict[str, Any]:
        """Closed-loop maximum throughput of POST /v1/events with unique events."""
        seconds = self.args.seconds
        if self.wrk:
            return self._wrk(port, prefix, seconds)
        result = asyncio.run(
            loadgen.closed_loop(
                HOST, port, workload.event_request(prefix), connections=CONNECTIONS, seconds=seconds, warmup=1.0
            )
        )
        return _summary(result)

    def _wrk(self, port: int, prefix: str, seconds: float) -> dict[str, Any]:
        for phase, length in (("warm", 1), ("run", seconds)):
            script = self.work / f"{prefix}-{phase}.lua"
            script.write_text(workload.wrk_script(f"{prefix}-{phase}"))
            out = subprocess.run(
                [self.wrk, "-t1", f"-c{CONNECTIONS}", f"-d{int(length)}s", "-s", str(script), f"http://{HOST}:{port}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        rate = float(out.split("Requests/sec:")[1].split()[0])
        bad = int(out.split("Non-2xx or 3xx responses:")[1].split()[0]) if "Non-2xx" in out else 0
        requests = int(out.split(" requests in ")[0].split()[-1])
        return {"rate": round(rate, 1), "requests": requests, "non_2xx": bad, "loadgen": "wrk"}

    def closed(self, port: int, make: loadgen.MakeRequest) -> dict[str, Any]:
        result = asyncio.run(
            loadgen.closed_loop(HOST, port, make, connections=CONNECTIONS, seconds=self.args.seconds, warmup=1.0)
        )
        return _summary(result)

    # phases -----------------------------------------------------------------------------------------------

    def baseline(self) -> None:
        port = free_port()
        proc = Process("bench.serve", ["baseline", str(port)], port=port, log=self.work / "baseline.log")
        try:
            self.figures["baseline"] = self.max_rate(port, "base")
        finally:
            proc.stop()
        _say(f"baseline: {self.figures['baseline']['rate']:.0f} req/s")

    def ingest(self) -> None:
        proc = self.gateway(self.fresh_db("ingest"), free_port(), worker=False, name="ingest")
        try:
            top = self.max_rate(proc.port, "ingest")
            half = top["rate"] / 2
            result = asyncio.run(
                loadgen.fixed_rate(
                    HOST,
                    proc.port,
                    workload.event_request("latency"),
                    rate=half,
                    connections=32,
                    seconds=self.args.seconds,
                )
            )
            self.figures["ingest"] = top
            self.figures["ingest_latency"] = {**_summary(result), "target_rate": round(half, 1)}
            self.rss["ingest"] = proc.peak_rss_mb()
        finally:
            proc.stop()
        _say(f"ingest: {top['rate']:.0f} req/s; at {half:.0f}/s p99 {self.figures['ingest_latency']['p99_ms']} ms")

    def end_to_end(self, key: str = "e2e", *, split: bool = False) -> Path:
        """Event -> provider -> webhook -> fetch -> sink for ``--e2e-runs`` runs; ``split``: the API and the
        worker as two processes (``--role api`` and ``--role worker``) instead of one."""
        db = self.fresh_db(key)
        fake_port, count = free_port(), self.args.e2e_runs
        gateway_port = free_port()
        fake = Process(
            "bench.fakeflow", [str(fake_port), str(gateway_port)], port=fake_port, log=self.work / f"{key}-fake.log"
        )
        procs: list[Process] = []
        try:
            if split:
                procs.append(self.served(db, fake_port, role="api", processes=1, name=f"{key}-api", port=gateway_port))
                procs.append(self.served(db, fake_port, role="worker", processes=1, name=f"{key}-worker"))
            else:
                config = self.work / f"{key}.toml"
                config.write_text(workload.config_text(str(db), fake_port))
                args = ["gateway", str(gateway_port), str(config)]
                procs.append(Process("bench.serve", args, port=gateway_port, log=self.work / f"{key}.log"))
            began = time.time()
            sent = asyncio.run(loadgen.send_all(HOST, gateway_port, workload.event_request(key), count, CONNECTIONS))
            stats = _wait_deliveries(fake_port, count, timeout=self.args.e2e_timeout)
            elapsed = (stats["last_delivery"] or time.time()) - began
            self.figures[key] = {
                "runs": count,
                "accepted": sent.ok,
                "delivered": stats["deliveries"],
                "seconds": round(elapsed, 2),
                "rate": round(stats["deliveries"] / elapsed, 1) if elapsed > 0 else 0.0,
                "first_delivery_s": _since(stats["first_delivery"], began),
                "median_delivery_s": _since(stats["median_delivery"], began),
                "webhooks": stats["webhooks_sent"],
                "webhook_failures": stats["webhook_failures"],
            }
            self.rss[key] = max(p.peak_rss_mb() for p in procs)
        finally:
            for proc in procs:
                proc.stop()
            fake.stop()
        fig = self.figures[key]
        _say(
            f"{key}: {fig['rate']:.0f} runs/s ({fig['delivered']}/{count} delivered; first after"
            f" {fig['first_delivery_s']} s, median after {fig['median_delivery_s']} s)"
        )
        return db

    def two_processes(self) -> None:
        """The second table: durable ingest with two API processes, and e2e with the API and the worker apart."""
        proc = self.served(self.fresh_db("ingest2"), free_port(), role="api", processes=2, name="ingest2")
        try:
            self.figures["ingest2"] = self.max_rate(proc.port, "ingest2")
        finally:
            proc.stop()
        _say(f"ingest, two API processes: {self.figures['ingest2']['rate']:.0f} req/s")
        self.end_to_end("e2e2", split=True)

    def webhooks(self, db: Path, key: str) -> None:
        ids = [r[0] for r in _query(db, "SELECT provider_run_id FROM runs WHERE provider_run_id IS NOT NULL")]
        if not ids:
            raise RuntimeError("no started runs to send notifications for")
        random.Random(7).shuffle(ids)
        proc = self.gateway(db, free_port(), worker=False, name=key)
        try:
            self.figures[key] = self.closed(proc.port, workload.notification_request(ids, f"{key}{time.time_ns()}"))
            self.rss[key] = proc.peak_rss_mb()
        finally:
            proc.stop()
        _say(f"{key}: {self.figures[key]['rate']:.0f} notifications/s")

    def scale(self) -> None:
        db = self.scale_db()
        proc = self.gateway(db, free_port(), worker=False, name="scale")
        try:
            self.figures["scale_ingest"] = self.max_rate(proc.port, f"scale{time.time_ns()}")
            lists = {}
            for path in ("/v1/reviews", "/v1/runs?status=COMPLETE", "/v1/runs?status=PENDING", "/v1/runs"):
                result = asyncio.run(loadgen.sequential(HOST, proc.port, [workload.list_request(path)] * 300))
                lists[path] = _summary(result)
            self.figures["scale_lists"] = lists
            self.rss["scale"] = proc.peak_rss_mb()
        finally:
            proc.stop()
        _say(f"scale ingest: {self.figures['scale_ingest']['rate']:.0f} req/s")
        self.webhooks(db, "scale_webhooks")

    def scale_db(self) -> Path:
        """A copy of a cached loaded store (rebuilt when the run count or the migrations change)."""
        runs = self.args.scale_runs
        versions = "-".join(str(m.version) for m in migrations("sqlite"))
        template = self.work / f"template-{runs}-{versions}-sealed-timekeys.db"
        if not template.exists():
            for old in self.work.glob("template-*.db"):
                old.unlink()
            partial = self.work / "template-partial.db"
            partial.unlink(missing_ok=True)
            _say(f"loading {runs} runs (once; cached as {template.name})")
            seconds = loader.load(str(partial), runs)
            partial.rename(template)
            self.figures["load_seconds"] = round(seconds, 1)
        db = self.fresh_db("scale")
        shutil.copyfile(template, db)
        return db


# helpers ------------------------------------------------------------------------------------------------


def _summary(result: loadgen.Result) -> dict[str, Any]:
    return {
        "rate": round(result.rate, 1),
        "requests": result.requests,
        "non_2xx": result.requests - result.ok,
        "errors": result.errors,
        "p50_ms": round(result.percentile(0.50) * 1000, 2),
        "p99_ms": round(result.percentile(0.99) * 1000, 2),
        "loadgen": "python",
    }


def _wait_http(url: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def _since(moment: float | None, began: float) -> float | None:
    return round(moment - began, 2) if moment else None


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _wait_deliveries(port: int, count: int, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"http://{HOST}:{port}/_stats") as answer:
            stats: dict[str, Any] = json.loads(answer.read())
        if stats["deliveries"] >= count or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def _say(text: str) -> None:
    print(f"  {text}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--seconds", type=float, default=5.0, help="each measurement window")
    parser.add_argument("--e2e-runs", type=int, default=10_000)
    parser.add_argument("--e2e-timeout", type=float, default=120.0)
    parser.add_argument("--scale-runs", type=int, default=1_000_000)
    parser.add_argument("--no-scale", action="store_true")
    parser.add_argument("--no-two", action="store_true", help="skip the two-process table")
    parser.add_argument("--python-loadgen", action="store_true", help="do not use wrk even when installed")
    parser.add_argument("--label", default="run")
    parser.add_argument("--workdir", default="var/bench")
    args = parser.parse_args()
    from bench import report

    bench = Bench(args)
    load = os.getloadavg()[0]
    print(
        f"bench: load generator {'wrk' if bench.wrk else 'python'}, {os.cpu_count()} cores, load {load:.2f}", flush=True
    )
    if load > 0.5:
        print("  warning: the machine is busy; figures will be low and noisy (compare ratios)", flush=True)
    bench.baseline()
    bench.ingest()
    e2e_db = bench.end_to_end()
    bench.webhooks(e2e_db, "webhooks")
    if not args.no_two:
        bench.two_processes()
    if not args.no_scale:
        bench.scale()
    doc = report.document(bench.figures, bench.rss, args, loadgen="wrk" if bench.wrk else "python")
    doc["machine"] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
        "loadavg_at_start": round(load, 2),
        "loadavg_at_end": round(os.getloadavg()[0], 2),
    }
    print(report.table(doc))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{args.label}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT.parent)}")


if __name__ == "__main__":
    main()
