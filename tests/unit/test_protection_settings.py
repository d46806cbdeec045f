from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.settings import parse_settings
from gateway.domain import errors
from gateway.store.sealing import generate_data_key
from tests.support import example_data


def production(tmp_path: Path) -> dict:
    data = example_data(tmp_path)
    data["mode"] = "production"
    return data


def problems(data: dict, environ: dict[str, str]) -> list[str]:
    with pytest.raises(errors.ConfigError) as info:
        parse_settings(data, environ)
    return info.value.problems


def real_environment(tmp_path: Path) -> dict[str, str]:
    """Every secret the example names, given as real environment variables (the data key left out)."""
    secrets = dict(example_data(tmp_path)["dev_secrets"])
    secrets.pop("GATEWAY_DATA_KEY")
    return secrets


def test_demo_mode_accepts_the_sample_key(tmp_path: Path) -> None:
    settings = parse_settings(example_data(tmp_path), {})
    assert settings.mode == "demo"
    assert settings.encryption.uses_sample_key


def test_production_refuses_the_sample_key_and_dev_secrets(tmp_path: Path) -> None:
    found = problems(production(tmp_path), {})
    assert any("sample data key" in p for p in found)
    assert any(p.startswith("dev_secrets") for p in found)


def test_production_refuses_the_sandbox(tmp_path: Path) -> None:
    data = production(tmp_path)
    del data["dev_secrets"]
    key_file = tmp_path / "data.key"
    key_file.write_text(generate_data_key("k1"))
    data["encryption"] = {"key_file": str(key_file)}
    with pytest.raises(errors.ConfigError) as info:
        parse_settings(data, real_environment(tmp_path), read_file=lambda p: Path(p).read_text())
    assert info.value.problems == [
        "sandbox: the embedded sandbox is refused outside demo mode (it serves /sandbox/* without operator"
        ' authentication); set [sandbox] enabled = false, or mode = "demo" for a demonstration'
    ]
    data["sandbox"]["enabled"] = False
    assert parse_settings(data, real_environment(tmp_path), read_file=lambda p: Path(p).read_text()).sandbox is None


def test_production_refuses_a_missing_key(tmp_path: Path) -> None:
    data = production(tmp_path)
    del data["dev_secrets"]
    del data["sandbox"]
    del data["encryption"]
    found = problems(data, real_environment(tmp_path))
    assert found == ["encryption: a data key is required outside demo mode (key_env or key_file)"]


def test_production_starts_with_a_real_key_from_a_file(tmp_path: Path) -> None:
    data = production(tmp_path)
    del data["dev_secrets"]
    del data["sandbox"]
    key_file = tmp_path / "data.key"
    key_file.write_text(generate_data_key("k1") + "\n")
    data["encryption"] = {"key_file": str(key_file)}
    settings = parse_settings(data, real_environment(tmp_path), read_file=lambda p: Path(p).read_text())
    assert settings.encryption.current is not None and settings.encryption.current.id == "k1"
    assert not settings.encryption.uses_sample_key


def test_bad_key_is_reported_without_its_value(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["dev_secrets"]["GATEWAY_DATA_KEY"] = "k1:c2hvcnQ="
    found = problems(data, {})
    assert found == ["encryption.key: data key 'k1' must decode to 32 bytes"]
