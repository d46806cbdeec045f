"""The operations commands (deliveries, runs, jobs, sinks) against a store the quickstart filled; every --help."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import build_parser, main
from tests.support import EXAMPLE_CONFIG, OPERATOR, SOURCE, claim, example_settings, running_gateway

EVENT = Path(__file__).resolve().parent.parent / "examples" / "event.json"


def quickstart(tmp_path: Path) -> None:
    """Post the example event, approve its review, let the run finish and deliver (in-process)."""

    async def go() -> None:
        async with running_gateway(example_settings(tmp_path)) as gw:
            ce = {"Content-Type": "application/cloudevents+json"}
            assert (await gw.client.post("/v1/events", content=EVENT.read_bytes(), headers={**SOURCE, **ce})).is_success
            await gw.settle()
            (review,) = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
            decision = {"input": {"decision": "approve"}}
            await claim(gw.client, review["id"])
            await gw.client.post(f"/v1/reviews/{review['id']}/decision", json=decision, headers=OPERATOR)
            await gw.settle()

    asyncio.run(go())


@pytest.fixture
def config(tmp_path: Path) -> Path:
    quickstart(tmp_path)
    text = EXAMPLE_CONFIG.read_text().replace("sqlite:///var/gateway.db", f"sqlite:///{tmp_path / 'gateway.db'}")
    path = tmp_path / "gateway.toml"
    path.write_text(text.replace("var/out/results.jsonl", str(tmp_path / "out" / "results.jsonl")))
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main([*argv, "--json"], environ={}) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_deliveries_runs_jobs_and_sinks_from_the_command_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = ["--config", str(config)]
    (delivery,) = run_json(capsys, "deliveries", "list", *c)
    assert (delivery["sink"], delivery["state"], delivery["attempts"]) == ("results", "DELIVERED", 1)
    shown = run_json(capsys, "deliveries", "show", delivery["id"], *c)
    assert [(a["attempt"], a["error"]) for a in shown["attempt_log"]] == [(1, None)]
    assert run_json(capsys, "deliveries", "retry", delivery["id"], *c)["state"] == "PENDING"
    assert main(["deliveries", "retry", delivery["id"], *c], environ={}) == 2  # already pending
    assert "already pending" in capsys.readouterr().err

    (run,) = run_json(capsys, "runs", "list", "--status", "COMPLETE", *c)
    detail = run_json(capsys, "runs", "show", run["id"], *c)
    assert detail["timeline"][-1]["to"] == "COMPLETE" and "output" not in detail  # never a payload
    assert main(["runs", "retry", run["id"], *c], environ={}) == 2  # only FAILED_TO_START runs
    assert main(["runs", "cancel", run["id"], *c], environ={}) == 2  # finished
    assert main(["runs", "show", "run_nope", *c], environ={}) == 2
    capsys.readouterr()

    assert run_json(capsys, "jobs", "list", "--dead", *c) == []
    assert main(["jobs", "retry", "12345", *c], environ={}) == 2
    assert run_json(capsys, "sinks", "list", *c) == [
        {"sink": "results", "disabled": False, "disabled_at": None, "disabled_reason": None, "failing_since": None}
    ]
    assert main(["sinks", "enable", "results", *c], environ={}) == 2  # not disabled
    assert main(["sinks", "enable", "nope", *c], environ={}) == 2
    capsys.readouterr()

    assert main(["deliveries", "list", *c], environ={}) == 0  # tab-separated lines
    assert delivery["id"] in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["deliveries", "list", "--limit", "0"],
        ["deliveries", "list", "--state", "LOST"],
        ["deliveries", "replay", "--created-after", "yesterday"],
        ["deliveries", "replay", "--created-after", "2026-11-22T09:00:00"],
        ["jobs", "retry", "x"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv, environ={})
    assert exited.value.code == 2
    assert "gateway: error:" in capsys.readouterr().err


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += leaves(sub, (*path, name))
    return found or [(path, parser)]


def test_every_help_says_what_each_option_does_and_its_default() -> None:
    for path, parser in leaves(build_parser()):
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"gateway {' '.join(path)}: {action.dest} has no help"
            if action.option_strings:
                assert f"(default: {action.default})" in " ".join(text.split()), (path, action.dest)


def test_keys_list_prints_the_id_keys_revoke_takes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE_CONFIG.read_text().replace("sqlite:///var/gateway.db", f"sqlite:///{tmp_path / 'g.db'}")
    c = ["--config", str(tmp_path / "g.toml")]
    (tmp_path / "g.toml").write_text(text)
    assert main(["operators", "add", "alice", "--role", "reviewer", *c], environ={}) == 0
    assert main(["keys", "create", "--operator", "alice", "--scope", "reviews:read", *c], environ={}) == 0
    capsys.readouterr()
    assert main(["keys", "list", *c], environ={}) == 0
    key_id = capsys.readouterr().out.split("\t", 1)[0]
    assert main(["keys", "revoke", key_id, *c], environ={}) == 0
    assert main(["keys", "list", *c], environ={}) == 0
    assert "revoked" in capsys.readouterr().out
