"""Settings: defaults, TOML file, SIGFORGE_* overrides, one readable line for each kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigforge.errors import InvalidSettings
from sigforge.settings import load_settings


def test_defaults_use_embedded_sqlite_and_broker(tmp_path: Path) -> None:
    s = load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'sigforge.sqlite3'}"
    assert s.broker_url == f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    assert s.server.host == "127.0.0.1"


def test_file_then_environment_override(tmp_path: Path) -> None:
    cfg = tmp_path / "sigforge.toml"
    cfg.write_text('data_dir = "/srv/sf"\n[server]\nport = 9000\n[broker]\nprocesses = 4\n')
    s = load_settings(str(cfg), env={"SIGFORGE_SERVER_PORT": "9100", "SIGFORGE_BROKER_HEARTBEAT_TTL_S": "12.5"})
    assert s.data_dir == "/srv/sf"
    assert s.server.port == 9100
    assert s.broker.processes == 4
    assert s.broker.heartbeat_ttl_s == 12.5


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        ("[server]\nport = 'eighty'\n", {}, r"server\.port: expected `int`, got `str`"),
        ("[server]\nport = 70000\n", {}, r"server\.port: expected `int` <= 65535"),
        ("[server]\nprot = 80\n", {}, r"server\.prot: unknown key"),
        ("", {"SIGFORGE_BROKER_PROCESSES": "many"}, r"broker\.processes: expected `int`"),
        ("", {"SIGFORGE_NO_SUCH_THING": "1"}, r"SIGFORGE_NO_SUCH_THING is not a sigforge setting"),
        ("[limits\n", {}, r"not valid TOML"),
        (
            "",
            {"SIGFORGE_LOG_LEVEL": "loud"},
            r"log_level: invalid enum value .loud.; expected one of .debug., .info.",
        ),
    ],
)
def test_bad_settings_give_one_readable_line(tmp_path: Path, toml: str, env: dict[str, str], expected: str) -> None:
    cfg = tmp_path / "sigforge.toml"
    cfg.write_text(toml)
    with pytest.raises(InvalidSettings, match=expected) as info:
        load_settings(str(cfg), env=env)
    assert "\n" not in str(info.value)


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(InvalidSettings, match="cannot read config file"):
        load_settings(str(tmp_path / "absent.toml"), env={})


def test_every_setting_is_documented() -> None:
    from sigforge.settings import Settings, _field_paths
    from support import REPO_ROOT

    doc = (REPO_ROOT / "docs" / "settings.md").read_text()
    missing = [env for env in _field_paths(Settings) if f"`{env}`" not in doc]
    assert missing == [], f"docs/settings.md lacks {missing}"


def test_example_config_is_the_defaults() -> None:
    import msgspec

    from sigforge.settings import Settings
    from support import REPO_ROOT

    example = load_settings(str(REPO_ROOT / "appliance" / "sigforge.example.toml"), env={})
    assert msgspec.to_builtins(example) == msgspec.to_builtins(Settings())
