"""/api/v1/toolchains through the real app: import a signed bundle from the request body, list, show, verify (and
quarantine), remove; the bundle cap instead of the app-wide body limit; /api/v1/targets telling whether a verified
toolchain is installed. Small synthetic toolchains (``toolchainkit``), a real registry, database and sandbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from sigforge.bundles import ROOT_FILE
from sigforge.bundles.keys import SigningKey
from sigforge.db.repositories import AuditRepository
from sigforge.db.session import Database
from sigforge.services.toolchains import ToolchainRegistry
from sigforge.settings import Settings, load_settings
from support import assert_problem
from toolchainkit import install_trust, make_bundle, new_keys
from userkit import sign_in

MAX_REQUEST = 65536  # the app-wide body limit of these tests (as in conftest)
MAX_BUNDLE = 400_000  # bundles.max_archive_bytes here: well above the app-wide limit
URL = "/api/v1/toolchains"


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return new_keys()


@pytest.fixture
def settings(tmp_path: Path, keys: dict[str, SigningKey]) -> Settings:
    settings = load_settings(
        env={
            "SIGFORGE_DATA_DIR": str(tmp_path / "data"),
            "SIGFORGE_LIMITS_MAX_REQUEST_BYTES": str(MAX_REQUEST),
            "SIGFORGE_BUNDLES_MAX_ARCHIVE_BYTES": str(MAX_BUNDLE),
        }
    )
    install_trust(settings.trust_path, keys)
    return settings


@pytest.fixture
def client(client: TestClient, app_db: Database) -> TestClient:
    """Signed in as the admin ``ops``: import, verify and remove are admin actions (see test_session_api.py)."""
    sign_in(client, app_db, "ops", "admin")
    return client


@pytest.fixture
def bundle(tmp_path: Path, keys: dict[str, SigningKey]) -> Path:
    """A good toolchain bundle bigger than the app-wide body limit (so only the bundle cap can let it through)."""
    path = make_bundle(tmp_path, keys["toolchain"], extra={"lib/libbig.a": os.urandom(100_000)})
    assert MAX_REQUEST < path.stat().st_size < MAX_BUNDLE
    return path


def _upload(client: TestClient, bundle: Path) -> Any:
    return client.post(URL, content=bundle.read_bytes(), headers={"content-type": "application/octet-stream"})


def _incoming(settings: Settings) -> list[Path]:
    incoming = settings.toolchains_path / ".incoming"
    return sorted(incoming.iterdir()) if incoming.exists() else []


def _host_c(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/v1/targets")
    assert response.status_code == 200
    target: dict[str, Any] = next(t for t in response.json()["targets"] if t["name"] == "host-c")
    return target


def test_upload_imports_lists_and_shows(
    client: TestClient, settings: Settings, app_db: Database, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[tuple[Path, int]] = []
    real_import = ToolchainRegistry.import_bundle

    def spy(self: ToolchainRegistry, path: Path, actor: Any) -> Any:
        handed.append((path, path.stat().st_mode & 0o777))  # what the controller hands the registry
        return real_import(self, path, actor)

    monkeypatch.setattr(ToolchainRegistry, "import_bundle", spy)
    response = client.post(
        URL,
        content=bundle.read_bytes(),
        headers={"content-type": "application/octet-stream", "x-request-id": "upload-1"},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["name"], created["version"], created["state"], created["targets"], created["node"]) == (
        "tinycc", "1.0.0", "verified", ["host-c"], settings.node_name,
    )  # fmt: skip
    assert created["entry_points"] == [{"role": "cc", "path": "bin/cc", "version": "tinycc 1.0.0"}]
    assert created["file_count"] == 4 and created["total_bytes"] > 100_000
    assert created["last_full_check_at"] is not None and created["state_detail"] is None
    assert Path(created["install_dir"]).parent.parent == settings.toolchains_path

    # The body went to a private file in the registry's staging directory, which is empty again afterwards.
    [(path, mode)] = handed
    assert path.parent == settings.toolchains_path / ".incoming" and mode == 0o600
    assert not path.exists() and _incoming(settings) == []

    listed = client.get(URL).json()["toolchains"]
    assert [t["name"] for t in listed] == ["tinycc"] and listed[0] == created
    assert client.get(f"{URL}/tinycc").json() == created
    with app_db.scope(write=False) as session:
        event = AuditRepository(session).recent(1, action="toolchain.imported")[0]
    assert (event.actor, event.request_id) == ("ops", "upload-1")  # the signed-in admin, by name


def test_a_bundle_signed_by_another_role_is_refused_and_installs_nothing(
    client: TestClient, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    body = assert_problem(_upload(client, make_bundle(tmp_path, keys["release"])), 422, "bundle-rejected")
    assert body["evidence"]["reason"] == "unknown-key"
    assert client.get(URL).json() == {"toolchains": []}
    assert _incoming(settings) == []
    assert _host_c(client)["toolchain"] is None


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
def test_an_oversized_upload_is_413_and_leaves_no_file(client: TestClient, settings: Settings, announced: bool) -> None:
    data = os.urandom(MAX_BUNDLE + 1)
    if announced:
        response = client.post(URL, content=data, headers={"content-type": "application/octet-stream"})
    else:  # no Content-Length: the cap is enforced on the bytes received

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(data), 65536):
                yield data[start : start + 65536]

        response = client.post(URL, content=chunks(), headers={"content-type": "application/octet-stream"})
    assert_problem(response, 413, "too-large")
    assert _incoming(settings) == []
    assert client.get(URL).json() == {"toolchains": []}


@pytest.mark.parametrize("data", [b"", b"not a bundle at all", os.urandom(3000)], ids=["empty", "text", "random"])
def test_a_body_that_is_no_bundle_is_422(client: TestClient, settings: Settings, data: bytes) -> None:
    response = client.post(URL, content=data, headers={"content-type": "application/octet-stream"})
    body = assert_problem(response, 422, "bundle-rejected")
    assert body["evidence"]["reason"] == "archive-format", body
    assert _incoming(settings) == [] and client.get(URL).json() == {"toolchains": []}


def test_an_unknown_toolchain_is_404_everywhere(client: TestClient) -> None:
    assert_problem(client.get(f"{URL}/nope"), 404, "not-found")
    assert_problem(client.post(f"{URL}/nope/verify"), 404, "not-found")
    assert_problem(client.delete(f"{URL}/nope"), 404, "not-found")


def test_verify_then_tamper_quarantines(client: TestClient, bundle: Path) -> None:
    created = _upload(client, bundle).json()
    target = _host_c(client)
    assert (target["toolchain"], target["toolchain_state"]) == ("tinycc", "verified")

    ok = client.post(f"{URL}/tinycc/verify")
    assert ok.status_code == 200 and ok.json() == {"name": "tinycc", "ok": True, "problems": []}
    shown = client.get(f"{URL}/tinycc").json()
    assert shown["state"] == "verified" and shown["last_full_check_at"] >= created["last_full_check_at"]

    lib = Path(created["install_dir"]) / "lib/libtiny.a"
    data = bytearray(lib.read_bytes())
    data[100] ^= 0xFF
    lib.write_bytes(bytes(data))
    failed = client.post(f"{URL}/tinycc/verify")
    assert failed.status_code == 200
    result = failed.json()
    assert result["ok"] is False and result["name"] == "tinycc"
    assert {"path": "lib/libtiny.a", "kind": "hash"} == {k: result["problems"][0][k] for k in ("path", "kind")}

    [listed] = client.get(URL).json()["toolchains"]
    assert listed["state"] == "quarantined"
    assert listed["state_detail"]["problems"][0]["path"] == "lib/libtiny.a"
    target = _host_c(client)
    assert (target["toolchain"], target["toolchain_state"]) == ("tinycc", "quarantined")
    again = client.post(f"{URL}/tinycc/verify").json()  # stays quarantined until a re-import
    assert again["ok"] is False and again["problems"][0]["kind"] == "quarantined"


def test_delete_removes_the_toolchain_and_its_files(client: TestClient, bundle: Path) -> None:
    created = _upload(client, bundle).json()
    response = client.delete(f"{URL}/tinycc")
    assert response.status_code == 204 and response.content == b""
    assert_problem(client.get(f"{URL}/tinycc"), 404, "not-found")
    assert client.get(URL).json() == {"toolchains": []}
    assert not Path(created["install_dir"]).exists()
    assert (_host_c(client)["toolchain"], _host_c(client)["toolchain_state"]) == (None, None)


def test_the_openapi_document_describes_the_toolchain_routes(client: TestClient) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    collection, one = paths[URL], paths[URL + "/{name}"]
    assert set(collection) >= {"get", "post"} and set(one) >= {"get", "delete"}
    assert "post" in paths[URL + "/{name}/verify"]
    assert collection["post"]["tags"] == ["toolchains"]
    assert collection["post"]["requestBody"]["content"]["application/octet-stream"]["schema"]["format"] == "binary"
    schemas = client.get("/schema/openapi.json").json()["components"]["schemas"]
    assert {"toolchain", "toolchain_state"} <= set(schemas["TargetOut"]["properties"])


def test_a_tool_that_reports_another_version_installs_nothing(
    client: TestClient, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path, keys["toolchain"], reports="6.6.6")
    body = assert_problem(_upload(client, bundle), 503, "toolchain-integrity")
    assert "reports 'tinycc 6.6.6'" in body["detail"]
    assert client.get(URL).json() == {"toolchains": []} and _incoming(settings) == []
    trees = settings.toolchains_path / "tinycc"
    assert not trees.exists() or list(trees.iterdir()) == []  # the extracted tree was removed again


def test_without_a_trust_root_nothing_can_be_imported(client: TestClient, settings: Settings, bundle: Path) -> None:
    (settings.trust_path / ROOT_FILE).unlink()
    body = assert_problem(_upload(client, bundle), 503, "toolchain")
    assert "no trust root is installed" in body["detail"]
    assert client.get(URL).json() == {"toolchains": []} and _incoming(settings) == []
