"""Settings for data protection: encryption at rest and payload retention (RELIABILITY.md A10-A12)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core.config_types import ParseContext
from gateway.store.sealing import DataKey, parse_data_key

# Digests of the sample keys published in config.example.toml: refused outside demo mode.
SAMPLE_KEY_DIGESTS = frozenset({"af27b9de5c1549ba4cb38e8d918b85b10c4b6125c77f8cfac3557c576d7de0fb"})


@dataclass(frozen=True, slots=True, kw_only=True)
class EncryptionSettings:
    current: DataKey | None = None
    previous: tuple[DataKey, ...] = ()

    @property
    def uses_sample_key(self) -> bool:
        return self.current is not None and key_digest(self.current) in SAMPLE_KEY_DIGESTS


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionSettings:
    payload_days: float = 30.0
    purge_interval: float = 3600.0


def key_digest(key: DataKey) -> str:
    return hashlib.sha256(key.secret).hexdigest()


def parse_encryption(
    data: Mapping[str, Any], ctx: ParseContext, read_file: Callable[[str], str] | None
) -> EncryptionSettings:
    ctx.unknown_keys("encryption", data, {"key_env", "key_file", "previous_keys_env"})
    if "key_env" in data and "key_file" in data:
        ctx.problem("encryption", "give key_env or key_file, not both")
    raw: str | None = None
    if "key_file" in data:
        raw = _read_key_file(data["key_file"], ctx, read_file)
    elif "key_env" in data:
        secret = ctx.secret("encryption.key_env", data["key_env"])
        raw = secret.reveal() if secret else None
    current = _key("encryption.key", raw, ctx) if raw is not None else None
    previous = []
    for i, secret in enumerate(
        ctx.secrets("encryption.previous_keys_env", data["previous_keys_env"]) if "previous_keys_env" in data else []
    ):
        key = _key(f"encryption.previous_keys_env[{i}]", secret.reveal(), ctx)
        if key is not None:
            previous.append(key)
    return EncryptionSettings(current=current, previous=tuple(previous))


def _read_key_file(path: Any, ctx: ParseContext, read_file: Callable[[str], str] | None) -> str | None:
    if not isinstance(path, str) or not path:
        ctx.problem("encryption.key_file", "must be a file path")
        return None
    if read_file is None:
        ctx.problem("encryption.key_file", "key files can only be read when loading from a file")
        return None
    try:
        return read_file(path)
    except OSError as exc:
        ctx.problem("encryption.key_file", f"cannot read {path}: {exc.strerror}")
        return None


def _key(key: str, raw: str, ctx: ParseContext) -> DataKey | None:
    try:
        return parse_data_key(raw)
    except ValueError as exc:
        ctx.problem(key, str(exc))
        return None


def parse_retention(data: Mapping[str, Any], ctx: ParseContext) -> RetentionSettings:
    ctx.unknown_keys("retention", data, {"payload_days", "purge_interval"})
    return RetentionSettings(
        payload_days=ctx.number("retention.payload_days", data.get("payload_days"), default=30.0, minimum=0),
        purge_interval=ctx.number("retention.purge_interval", data.get("purge_interval"), default=3600.0, minimum=1),
    )


def check_mode(
    mode: str, encryption: EncryptionSettings, dev_secrets_used: list[str], ctx: ParseContext, *, sandbox: bool
) -> None:
    """Outside demo mode the gateway refuses a missing or sample data key, development secrets and the sandbox."""
    if mode not in ("demo", "production"):
        ctx.problem("mode", 'must be "demo" or "production"')
        return
    if mode == "demo":
        return
    if encryption.current is None:
        ctx.problem("encryption", "a data key is required outside demo mode (key_env or key_file)")
    elif encryption.uses_sample_key:
        ctx.problem("encryption", "the sample data key from config.example.toml is refused outside demo mode")
    if dev_secrets_used:
        ctx.problem("dev_secrets", f"development secrets are refused outside demo mode: {', '.join(dev_secrets_used)}")
    if sandbox:
        ctx.problem(
            "sandbox",
            "the embedded sandbox is refused outside demo mode (it serves /sandbox/* without operator"
            ' authentication); set [sandbox] enabled = false, or mode = "demo" for a demonstration',
        )
