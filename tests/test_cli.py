"""The gateway command: check-config prints masked settings, bad configs exit 2 listing every problem, migrate."""

from __future__ import annotations

import json
import sqlite3
import tomllib
from pathlib import Path

import pytest

from gateway.cli import main
from tests.support import EXAMPLE_CONFIG

DEV_SECRETS: dict[str, str] = tomllib.loads(EXAMPLE_CONFIG.read_text())["dev_secrets"]


def test_check_config_prints_the_settings_with_secrets_masked(capsys: pytest.CaptureFixture[str]) -> None:
    environ = {"GATEWAY_DEMO_SOURCE_TOKEN": "real-source-token-value", "GATEWAY_SOHAR_CLIENT_SECRET": "real-secret"}
    assert main(["check-config", str(EXAMPLE_CONFIG)], environ=environ) == 0
    out, err = capsys.readouterr()
    described = json.loads(out)
    assert described["store"]["url"] == "sqlite:///var/gateway.db"
    assert described["providers"]["sohar"]["settings"]["client_secret"] == "****** (from $GATEWAY_SOHAR_CLIENT_SECRET)"
    for value in ("real-source-token-value", "real-secret"):
        assert value not in out and value not in err
    for name, value in DEV_SECRETS.items():
        if name != "GATEWAY_SOHAR_CLIENT_ID":  # the sandbox's client_id is plain config
            assert value not in out and value not in err, name
    assert "development secrets in use" in err
    assert "GATEWAY_DEMO_SOURCE_TOKEN" not in err.split("in use for", 1)[1]  # set in the environment


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_a_bad_config_exits_2_listing_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE_CONFIG.read_text().replace('url = "sqlite:///var/gateway.db"', 'url = "mysql://x"')
    text = text.replace('source = "demo"\ntype = "com.example.patient.checked"', 'source = "ghost"\ntype = "t"')
    text += "\n[extra]\nkey = 1\n"
    path = write_config(tmp_path, text)
    assert main(["check-config", str(path)], environ={}) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "invalid configuration" in err
    assert "store.url: must start with sqlite:/// or postgresql://" in err
    assert "routes[1].source: no source named 'ghost'" in err
    assert "extra: is not a known setting" in err


def test_a_config_with_unset_variables_names_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE_CONFIG.read_text()
    text = text[: text.index("\n[dev_secrets]\n")] + text[text.index("\n[operators]") :]
    assert main(["check-config", str(write_config(tmp_path, text))], environ={}) == 2
    err = capsys.readouterr().err
    for name in ("GATEWAY_DEMO_SOURCE_TOKEN", "GATEWAY_DEMO_OPERATOR_TOKEN", "GATEWAY_SOHAR_CLIENT_SECRET"):
        assert f"environment variable {name} is not set" in err


def test_missing_and_unparsable_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(tmp_path / "absent.toml")], environ={}) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["check-config", str(write_config(tmp_path, "[server"))], environ={}) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["serve", "--config", str(tmp_path / "absent.toml")], environ={}) == 2
    assert main(["migrate", "--config", str(tmp_path / "absent.toml")], environ={}) == 2


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ('{ type = "strin" }', "schema.type is not valid JSON Schema"),
        ('{ properties = { d = { pattern = "(" } } }', "schema.properties.d.pattern is not valid JSON Schema"),
        ('{ "$ref" = "https://schemas.example/d.json" }', "does not point inside the schema (nothing is fetched)"),
        ('{ "$ref" = "#/$defs/absent" }', "schema $ref '#/$defs/absent' does not point inside the schema"),
    ],
)
@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_a_decision_schema_that_cannot_be_used_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], schema: str, problem: str, command: str
) -> None:
    text = EXAMPLE_CONFIG.read_text()
    start = text.index("schema = ", text.index("[flows.eligibility.inputs.await-decision]"))
    text = text[:start] + f"schema = {schema}" + text[text.index("\n", start) :]
    path = str(write_config(tmp_path, text))
    assert main(["check-config", path] if command == "check-config" else ["serve", "--config", path], environ={}) == 2
    out, err = capsys.readouterr()
    assert out == ""
    [line] = [line for line in err.splitlines() if "flows.eligibility.inputs.await-decision.schema: " in line]
    assert problem in line
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["check-config"], ["serve", "--port", "eighty"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv, environ={})
    assert caught.value.code == 2
    assert "gateway: error:" in capsys.readouterr().err


def test_migrate_applies_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "data" / "gateway.db"
    text = EXAMPLE_CONFIG.read_text().replace("sqlite:///var/gateway.db", f"sqlite:///{db}")
    path = write_config(tmp_path, text)
    assert main(["migrate", "--config", str(path)], environ={}) == 0
    first = capsys.readouterr().out
    assert first.startswith("applied ") and first != "applied 0 migration(s)\n"
    assert main(["migrate", "--config", str(path)], environ={}) == 0
    assert capsys.readouterr().out == "applied 0 migration(s)\n"
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"events", "runs", "reviews", "deliveries", "jobs", "schema_migrations"} <= tables
