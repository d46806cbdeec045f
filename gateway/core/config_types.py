"""Building blocks for parsing settings: Secret and ParseContext. Pure: nothing here reads files or os.environ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class Secret:
    """A secret value that never shows in repr, str or logs."""

    __slots__ = ("_env", "_value")

    def __init__(self, value: str, env: str | None = None) -> None:
        self._value = value
        self._env = env

    def reveal(self) -> str:
        return self._value

    @property
    def env(self) -> str | None:
        return self._env

    def __repr__(self) -> str:
        return f"Secret(env={self._env!r}, value='**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(slots=True)
class ParseContext:
    """Collects every problem found while parsing settings, so all are reported at once.

    ``environ`` is passed in; ``dev_secrets`` are development-only fallbacks for unset variables.
    ``self_url`` is the gateway's own base URL, substituted for ``{self}`` in URLs.
    """

    environ: Mapping[str, str]
    dev_secrets: Mapping[str, str] = field(default_factory=dict)
    self_url: str = "http://127.0.0.1:8000"
    problems: list[str] = field(default_factory=list)
    dev_secrets_used: list[str] = field(default_factory=list)

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def secret(self, key: str, env_name: Any, *, required: bool = True) -> Secret | None:
        """Resolve a secret given as the name of an environment variable."""
        if env_name is None:
            if required:
                self.problem(key, "is required (the name of an environment variable)")
            return None
        if not isinstance(env_name, str) or not env_name:
            self.problem(key, "must be the name of an environment variable")
            return None
        value = self.environ.get(env_name)
        if value is None and env_name in self.dev_secrets:
            value = self.dev_secrets[env_name]
            self.dev_secrets_used.append(env_name)
        if value is None or value == "":
            self.problem(key, f"environment variable {env_name} is not set")
            return None
        return Secret(value, env=env_name)

    def secrets(self, key: str, env_names: Any) -> list[Secret]:
        if isinstance(env_names, str):
            env_names = [env_names]
        if not isinstance(env_names, list) or not env_names:
            self.problem(key, "must be a non-empty list of environment variable names")
            return []
        found = [self.secret(f"{key}[{i}]", name) for i, name in enumerate(env_names)]
        return [s for s in found if s is not None]

    def url(self, key: str, value: Any, *, required: bool = True) -> str | None:
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            self.problem(key, "must be a URL")
            return None
        url = str(value).replace("{self}", self.self_url.rstrip("/"))
        if not url.startswith(("http://", "https://")):
            self.problem(key, f"must start with http:// or https:// (got {url!r})")
            return None
        return url.rstrip("/")

    def string(self, key: str, value: Any, *, default: str | None = None, required: bool = True) -> str | None:
        if value is None:
            if default is None and required:
                self.problem(key, "is required")
            return default
        if not isinstance(value, str) or not value:
            self.problem(key, "must be a non-empty string")
            return default
        return str(value)

    def number(
        self,
        key: str,
        value: Any,
        *,
        default: float,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(key, "must be a number")
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.problem(key, f"must be between {minimum} and {maximum}")
            return default
        return float(value)

    def integer(
        self, key: str, value: Any, *, default: int, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, "must be an integer")
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.problem(key, f"must be between {minimum} and {maximum}")
            return default
        return value

    def boolean(self, key: str, value: Any, *, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, "must be true or false")
            return default
        return value

    def signing_secrets(self, key: str, env_names: Any) -> tuple[Secret, ...]:
        """Outbound signing secrets: one variable name or a list (every one signs: rotation without downtime)."""
        from gateway.core import signing

        if isinstance(env_names, list) and env_names:
            named = [(f"{key}[{i}]", name) for i, name in enumerate(env_names)]
        else:
            named = [(key, env_names)]
        found = []
        for where, name in named:
            secret = self.secret(where, name)
            if secret is None:
                continue
            try:
                signing.parse_signing_key(secret.reveal())
            except ValueError:
                self.problem(where, "is not a signing secret (expected whsec_<base64>)")
                continue
            found.append(secret)
        return tuple(found)

    def table(self, key: str, value: Any) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(key, "must be a table")
            return {}
        return value

    def string_list(self, key: str, value: Any, *, default: Sequence[str] = ()) -> list[str]:
        if value is None:
            return list(default)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(key, "must be a list of strings")
            return list(default)
        return list(value)

    def unknown_keys(self, key: str, data: Mapping[str, Any], known: set[str]) -> None:
        for name in data:
            if name not in known:
                self.problem(f"{key}.{name}" if key else name, "is not a known setting")
