"""The console and the OpenAPI UI load nothing from outside the appliance."""

from __future__ import annotations

import re
from pathlib import Path

from litestar.testing import TestClient

from sigforge.web.controllers.system import STATIC_DIR

# A reference that a browser would fetch: src/href attributes, CSS url(), @import, JS fetch/import of absolute URLs.
FETCHING = re.compile(
    r"""(?:src|href)\s*=\s*["']\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import\s+["'](?:https?:)?//""",
    re.IGNORECASE,
)


def test_console_page_is_served_with_a_strict_csp(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert not FETCHING.search(page.text)
    for asset in re.findall(r"""(?:src|href)=["'](/static/[^"']+)["']""", page.text):
        assert client.get(asset).status_code == 200, asset


def test_openapi_ui_uses_vendored_assets(client: TestClient) -> None:
    page = client.get("/schema")
    assert page.status_code == 200
    assert not FETCHING.search(page.text), "the OpenAPI UI must not reference a CDN"
    assets = re.findall(r"""(?:src|href)=["'](/static/[^"']+)["']""", page.text)
    assert assets, "the UI should load its JS and CSS from /static"
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert client.get("/schema/openapi.json").json()["info"]["title"] == "sigforge"


def test_no_static_asset_references_a_remote_host() -> None:
    offenders = []
    for path in Path(STATIC_DIR).rglob("*"):
        if path.suffix in {".html", ".css", ".js"} and "vendor" not in path.parts:
            if FETCHING.search(path.read_text(encoding="utf-8", errors="replace")):
                offenders.append(str(path))
    assert offenders == []
