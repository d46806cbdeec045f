"""The gateway command: check-config prints masked settings, bad configs exit 2 listing every problem, migrate."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import sqlite3
import tomllib
from pathlib import Path

import pytest

from gateway.cli import demo_refusal, main
from gateway.config.settings import load_settings
from gateway.store.sealing import generate_data_key
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


def test_production_with_the_sandbox_is_refused_by_check_config_and_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE_CONFIG.read_text().replace('mode = "demo"', 'mode = "production"')
    text = text[: text.index("\n[dev_secrets]\n")] + text[text.index("\n[operators]") :]
    text = text.replace('key_env = "GATEWAY_DATA_KEY"', f'key_file = "{tmp_path / "data.key"}"')
    (tmp_path / "data.key").write_text(generate_data_key("k1"))
    path = write_config(tmp_path, text)
    environ = {name: value for name, value in DEV_SECRETS.items() if name != "GATEWAY_DATA_KEY"}
    for argv in (["check-config", str(path)], ["serve", "--config", str(path)]):
        assert main(argv, environ=environ) == 2
        problems = [line.strip() for line in capsys.readouterr().err.splitlines() if line.startswith("  ")]
        assert problems == [
            "- sandbox: the embedded sandbox is refused outside demo mode (it serves /sandbox/* without operator"
            ' authentication); set [sandbox] enabled = false, or mode = "demo" for a demonstration'
        ]
    assert (
        main(
            [
                "check-config",
                str(write_config(tmp_path, text.replace("[sandbox]\nenabled = true", "[sandbox]\nenabled = false"))),
            ],
            environ=environ,
        )
        == 0
    )


@pytest.mark.parametrize(
    ("host", "allow_demo", "refused"),
    [
        ("127.0.0.1", False, False),
        ("127.8.9.1", False, False),
        ("::1", False, False),
        ("localhost", False, False),
        ("0.0.0.0", False, True),
        ("::", False, True),
        ("192.0.2.7", False, True),
        ("gateway.example", False, True),
        ("0.0.0.0", True, False),
    ],
)
def test_demo_mode_is_served_only_on_loopback_unless_allowed(host: str, allow_demo: bool, refused: bool) -> None:
    settings = load_settings(EXAMPLE_CONFIG, {})
    assert (demo_refusal(settings, host, allow_demo=allow_demo) is not None) == refused
    production = dataclasses.replace(settings, mode="production")
    assert demo_refusal(production, host, allow_demo=False) is None


def test_serve_refuses_demo_mode_on_every_interface(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(EXAMPLE_CONFIG), "--host", "0.0.0.0"], environ={}) == 2
    assert "refusing to serve a demo-mode config on 0.0.0.0" in capsys.readouterr().err
    on_all = write_config(
        tmp_path,
        EXAMPLE_CONFIG.read_text().replace(
            'host = "127.0.0.1"', 'host = "0.0.0.0"\npublic_url = "http://127.0.0.1:8000"'
        ),
    )
    assert main(["serve", "--config", str(on_all)], environ={}) == 2
    assert "--allow-demo" in capsys.readouterr().err


def test_the_production_example_passes_check_config_with_its_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (EXAMPLE_CONFIG.parent / "examples" / "production.toml").read_text()
    key_file = tmp_path / "data.key"
    key_file.write_text(generate_data_key("2026-11"))
    path = write_config(tmp_path, text.replace("/run/secrets/gateway-data-key", str(key_file)))
    assert main(["check-config", str(path)], environ={}) == 2
    needed = sorted(set(re.findall(r"environment variable (GATEWAY_[A-Z_]+) is not set", capsys.readouterr().err)))
    assert needed == [
        "GATEWAY_CRM_SINK_SECRET",
        "GATEWAY_EHR_WEBHOOK_SECRET",
        "GATEWAY_OPERATOR_TOKEN",
        "GATEWAY_SOHAR_CLIENT_ID",
        "GATEWAY_SOHAR_CLIENT_SECRET",
        "GATEWAY_SOHAR_WEBHOOK_SECRET",
    ]
    environ = {name: "whsec_" + base64.b64encode(name.encode().ljust(32, b"-")).decode() for name in needed}
    environ |= {"GATEWAY_OPERATOR_TOKEN": "o" * 40, "GATEWAY_SOHAR_CLIENT_ID": "c"}
    assert main(["check-config", str(path)], environ=environ) == 0, capsys.readouterr().err
    described = json.loads(capsys.readouterr().out)
    assert described["mode"] == "production" and described["sandbox"] is None
    assert described["server"]["http"]["trusted_proxies"] == ["10.0.0.0/8"]
