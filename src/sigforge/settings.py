"""One typed settings object, loaded once at the edge.

Sources, later ones winning: built-in defaults, a TOML file (``--config``, ``$SIGFORGE_CONFIG``, ``./sigforge.toml``
or ``/etc/sigforge/sigforge.toml``, the first that exists), then ``SIGFORGE_*`` environment variables. A nested key
``broker.heartbeat_ttl_s`` is overridden by ``SIGFORGE_BROKER_HEARTBEAT_TTL_S``. Unknown keys and unknown
``SIGFORGE_*`` variables are errors: a typo must not silently fall back to a default.

A bad value raises ``InvalidSettings`` with one line naming the key and what was expected.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import msgspec

from sigforge.errors import InvalidSettings

CONFIG_ENV = "SIGFORGE_CONFIG"
ENV_PREFIX = "SIGFORGE_"
DEFAULT_CONFIG_PATHS = (Path("sigforge.toml"), Path("/etc/sigforge/sigforge.toml"))

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class ServerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Where the web service listens."""

    host: str = "127.0.0.1"
    port: Port = 8470


class DatabaseSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Storage. An empty URL means the embedded SQLite file ``<data_dir>/sigforge.sqlite3``."""

    url: str = ""
    busy_timeout_ms: PositiveInt = 10_000


class BrokerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The job queue. An empty URL means the embedded SQLite broker ``<data_dir>/queue.sqlite3``.

    Otherwise ``sqlite:///path``, ``redis://…`` or ``amqp://…``.
    """

    url: str = ""
    processes: PositiveInt = 2
    threads: PositiveInt = 2
    heartbeat_interval_s: PositiveFloat = 5.0
    heartbeat_ttl_s: PositiveFloat = 30.0
    poll_interval_s: PositiveFloat = 0.1
    max_retries: Annotated[int, msgspec.Meta(ge=0)] = 3
    min_backoff_ms: PositiveInt = 1_000
    max_backoff_ms: PositiveInt = 60_000
    job_time_limit_s: PositiveFloat = 600.0
    redispatch_after_s: PositiveFloat = 300.0


class LimitSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Sizes and time limits applied at the edge and in the sandbox."""

    max_request_bytes: PositiveInt = 1_048_576
    max_source_bytes: PositiveInt = 262_144
    max_frame_length: PositiveInt = 1_048_576
    build_timeout_s: PositiveFloat = 120.0
    run_timeout_s: PositiveFloat = 60.0
    build_memory_mb: PositiveInt = 2_048
    run_memory_mb: PositiveInt = 1_024
    max_file_mb: PositiveInt = 256
    page_size_max: PositiveInt = 200


class SandboxSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """How generated programs and toolchains are isolated.

    ``network`` = ``"isolate"`` runs every process in a new, empty network namespace and refuses to run if that is
    impossible; ``"trust-host"`` is for hosts that forbid namespaces and are air-gapped already (it is logged).
    """

    network: Literal["isolate", "trust-host"] = "isolate"


class ToolchainSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The toolchain registry: compilers and simulators imported from signed bundles, checked before every use.

    ``dir`` empty means ``<data_dir>/toolchains``; ``node`` empty means this machine's host name (a site cluster's
    worker nodes each hold their own toolchains). ``full_check_interval_s`` is how often the worker pool re-hashes
    every file of every toolchain (0 disables the schedule; imports and ``toolchain verify`` still hash in full).
    """

    dir: str = ""
    node: str = ""
    full_check_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 86_400.0
    hash_workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2


class BundleSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Signed bundles (toolchains, updates, install media): where the trust root lives and what an archive may hold.

    ``trust_dir`` empty means ``<data_dir>/trust`` (the installed root metadata and the persisted time/version floor).
    """

    trust_dir: str = ""
    max_archive_bytes: PositiveInt = 4 * 1024**3
    max_unpacked_bytes: PositiveInt = 16 * 1024**3
    max_files: PositiveInt = 200_000
    max_compression_ratio: PositiveInt = 200


class Settings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Everything configurable about one sigforge node."""

    data_dir: str = "~/.local/share/sigforge"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    broker: BrokerSettings = BrokerSettings()
    limits: LimitSettings = LimitSettings()
    sandbox: SandboxSettings = SandboxSettings()
    toolchains: ToolchainSettings = ToolchainSettings()
    bundles: BundleSettings = BundleSettings()

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_path / 'sigforge.sqlite3'}"

    @property
    def broker_url(self) -> str:
        return self.broker.url or f"sqlite:///{self.data_path / 'queue.sqlite3'}"

    @property
    def toolchains_path(self) -> Path:
        return (
            Path(self.toolchains.dir).expanduser().resolve() if self.toolchains.dir else self.data_path / "toolchains"
        )

    @property
    def node_name(self) -> str:
        return self.toolchains.node or socket.gethostname()

    @property
    def trust_path(self) -> Path:
        return (
            Path(self.bundles.trust_dir).expanduser().resolve() if self.bundles.trust_dir else self.data_path / "trust"
        )

    @property
    def public_url(self) -> str:
        host = "127.0.0.1" if self.server.host in ("0.0.0.0", "::") else self.server.host  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.server.port}"


def _field_paths(struct: type[msgspec.Struct], prefix: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Map every environment variable name to the settings path it overrides."""
    out: dict[str, tuple[str, ...]] = {}
    for field in msgspec.structs.fields(struct):
        path = (*prefix, field.name)
        ftype = field.type
        if isinstance(ftype, type) and issubclass(ftype, msgspec.Struct):
            out.update(_field_paths(ftype, path))
        else:
            out[ENV_PREFIX + "_".join(path).upper()] = path
    return out


def _set_path(tree: dict[str, Any], path: tuple[str, ...], value: str) -> None:
    node = tree
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise InvalidSettings(f"settings: {'.'.join(path[:-1])}: expected a table")
        node = child
    node[path[-1]] = value


_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$")


def _readable(error: msgspec.ValidationError, source: str) -> InvalidSettings:
    match = _MSGSPEC_PATH.match(str(error))
    assert match is not None  # the pattern matches any string
    key = (match.group("path") or "").lstrip(".") or "(top level)"
    message = match.group("msg")
    if message.startswith("Object contains unknown field"):
        unknown = message.split("`")[1]
        key = f"{key}.{unknown}" if key != "(top level)" else unknown
        message = "unknown key"
    elif message.startswith("Invalid enum value"):
        allowed = _allowed_values(Settings, key.split("."))
        if allowed:
            message = f"{message}; expected one of {', '.join(repr(a) for a in allowed)}"
    return InvalidSettings(f"settings ({source}): {key}: {message[0].lower()}{message[1:]}")


def _allowed_values(struct: type[msgspec.Struct], path: list[str]) -> tuple[Any, ...]:
    """The Literal choices of the field at ``path``, or () when it is not a Literal."""
    hints = get_type_hints(struct, include_extras=True)
    ftype = hints.get(path[0])
    if len(path) > 1 and isinstance(ftype, type) and issubclass(ftype, msgspec.Struct):
        return _allowed_values(ftype, path[1:])
    return get_args(ftype) if get_origin(ftype) is Literal else ()


def find_config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """The config file to read, or None when none is given and no default exists."""
    if explicit:
        return Path(explicit)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return next((p for p in DEFAULT_CONFIG_PATHS if p.is_file()), None)


def load_settings(config_file: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the config file and environment into one validated ``Settings``.

    Raises:
        InvalidSettings: a file that cannot be read or parsed, an unknown key, or a value of the wrong type.
    """
    env = os.environ if env is None else env
    tree: dict[str, Any] = {}
    source = "defaults"
    path = find_config_file(config_file, env)
    if path is not None:
        source = str(path)
        try:
            tree = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidSettings(f"settings: cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidSettings(f"settings ({path}): not valid TOML: {exc}") from exc
    known = _field_paths(Settings)
    overridden = False
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        if name not in known:
            raise InvalidSettings(f"settings (environment): {name} is not a sigforge setting")
        _set_path(tree, known[name], value)
        overridden = True
    if overridden:
        source = f"{source} + environment"
    try:
        return msgspec.convert(tree, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise _readable(exc, source) from None
