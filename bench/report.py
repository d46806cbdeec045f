"""Figures beside their targets: the table ``make bench`` prints and the JSON it writes."""

from __future__ import annotations

import argparse
import math
from typing import Any

RSS_TARGET_MB = 120.0


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def rows(fig: dict[str, Any], rss: dict[str, float]) -> list[dict[str, Any]]:
    """(figure, value, unit, target, comparison) for every figure measured."""
    base = fig["baseline"]["rate"]
    out: list[dict[str, Any]] = [
        _row("baseline: bare Starlette, parse JSON, 202", base, "req/s"),
        _row("durable ingest (ack after commit)", fig["ingest"]["rate"], "req/s"),
        _row("  ingest / baseline", _ratio(fig["ingest"]["rate"], base), "x", 0.70, ">="),
        _row(
            f"  p50 ingest latency at {fig['ingest_latency']['target_rate']:.0f}/s (half max)",
            fig["ingest_latency"]["p50_ms"],
            "ms",
        ),
        _row("  p99 ingest latency at half max", fig["ingest_latency"]["p99_ms"], "ms", 10.0, "<="),
        _row("end-to-end runs (event -> sink delivery)", fig["e2e"]["rate"], "runs/s", 1000.0, ">="),
        _row("  first delivery after the burst began", fig["e2e"].get("first_delivery_s"), "s"),
        _row("  median delivery after the burst began", fig["e2e"].get("median_delivery_s"), "s"),
        _row("webhook handling (signed, verified, stored)", fig["webhooks"]["rate"], "req/s"),
        _row("  webhooks / baseline", _ratio(fig["webhooks"]["rate"], base), "x"),
    ]
    if "scale_ingest" in fig:
        out += [
            _row("1M runs stored: durable ingest", fig["scale_ingest"]["rate"], "req/s"),
            _row(
                "  1M ingest / empty ingest",
                _ratio(fig["scale_ingest"]["rate"], fig["ingest"]["rate"]),
                "x",
                0.90,
                ">=",
            ),
            _row("1M runs stored: webhook handling", fig["scale_webhooks"]["rate"], "req/s"),
            _row(
                "  1M webhooks / empty webhooks",
                _ratio(fig["scale_webhooks"]["rate"], fig["webhooks"]["rate"]),
                "x",
                0.90,
                ">=",
            ),
        ]
        for path, summary in fig["scale_lists"].items():
            out.append(_row(f"1M runs stored: GET {path} first page p99", summary["p99_ms"], "ms", 20.0, "<="))
    out.append(
        _row("peak RSS of the gateway (max over phases)", round(max(rss.values()), 1), "MB", RSS_TARGET_MB, "<=")
    )
    return out


def two_process_rows(fig: dict[str, Any]) -> list[dict[str, Any]]:
    """The second table: what two processes give beside one (same run, same machine)."""
    if "ingest2" not in fig:
        return []
    base = fig["baseline"]["rate"]
    return [
        _row("durable ingest, two API processes (--role api --processes 2)", fig["ingest2"]["rate"], "req/s"),
        _row("  two API processes / baseline (one process)", _ratio(fig["ingest2"]["rate"], base), "x", 0.70, ">="),
        _row("  two API processes / one", _ratio(fig["ingest2"]["rate"], fig["ingest"]["rate"]), "x"),
        _row("end-to-end runs, API and worker apart (two processes)", fig["e2e2"]["rate"], "runs/s", 1000.0, ">="),
        _row("  first delivery after the burst began", fig["e2e2"].get("first_delivery_s"), "s"),
        _row("  median delivery after the burst began", fig["e2e2"].get("median_delivery_s"), "s"),
        _row("  two processes / one", _ratio(fig["e2e2"]["rate"], fig["e2e"]["rate"]), "x"),
    ]


def _row(
    name: str, value: float | None, unit: str, target: float | None = None, op: str | None = None
) -> dict[str, Any]:
    met = None
    if target is not None and value is not None and not (isinstance(value, float) and math.isnan(value)):
        met = value >= target if op == ">=" else value <= target
    return {"figure": name, "value": value, "unit": unit, "target": target, "op": op, "met": met}


def document(fig: dict[str, Any], rss: dict[str, float], args: argparse.Namespace, *, loadgen: str) -> dict[str, Any]:
    return {
        "label": args.label,
        "settings": {
            "seconds": args.seconds,
            "e2e_runs": args.e2e_runs,
            "scale_runs": None if args.no_scale else args.scale_runs,
            "loadgen": loadgen,
        },
        "table": rows(fig, rss),
        "two_processes": two_process_rows(fig),
        "figures": fig,
        "peak_rss_mb": rss,
    }


def table(doc: dict[str, Any]) -> str:
    lines = _lines("one process each", doc["table"])
    if doc.get("two_processes"):
        lines += _lines("two processes (same run)", doc["two_processes"])
    return "\n".join(lines)


def _lines(title: str, table: list[dict[str, Any]]) -> list[str]:
    lines = [f"\n{title:<58} {'value':>12}  {'target':>12}  ", "-" * 92]
    for row in table:
        target = f"{row['op']} {row['target']:g}" if row["target"] is not None else ""
        verdict = {True: "met", False: "MISSED", None: ""}[row["met"]]
        value = f"{row['value']:,.2f}" if isinstance(row["value"], float) else str(row["value"])
        lines.append(f"{row['figure']:<58} {value:>9} {row['unit']:<6} {target:>9}  {verdict}")
    return lines
