"""OpenAPI at /schema with a Swagger UI served from the package.

Litestar's stock Swagger page inlines a script and a style block; this page instead loads the vendored bundle plus a
first-party initialiser (``static/openapi/swagger-init.js``), so it runs under the same strict Content-Security-Policy
as the console and can only ever talk to its own origin.
"""

from __future__ import annotations

import html
from typing import Any

from litestar import Request
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

import sigforge

SWAGGER = "/static/vendor/swagger-ui"
# The sign-in token of POST /api/v1/session; routes that need it list ``BEARER`` as their ``security``.
BEARER_SCHEME = "bearer"
BEARER: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]


class LocalSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI without inline script or style, and without any CDN default."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        spec_url = html.escape(self.get_openapi_json_route(request), quote=True)
        title = html.escape(str(openapi_schema["info"]["title"]))
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{title} API</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'{self.favicon}<link rel="stylesheet" href="{self.css_url}">'
            '<link rel="stylesheet" href="/static/openapi/swagger-page.css"></head><body>'
            f'<div id="swagger-ui" data-openapi-url="{spec_url}"></div>'
            f'<script src="{self.js_url}"></script>'
            '<script src="/static/openapi/swagger-init.js"></script></body></html>'
        ).encode()


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="sigforge",
        version=sigforge.__version__,
        description="Offline algorithm-to-silicon appliance: submit DSP algorithms, get verified target code.",
        path="/schema",
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="the token from POST /api/v1/session (the console sends the session cookie instead)",
                )
            }
        ),
        render_plugins=[
            LocalSwaggerRenderPlugin(
                js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                css_url=f"{SWAGGER}/swagger-ui.css",
                # Unused by this page, but the parent's default would be a CDN URL.
                standalone_preset_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                favicon=f'<link rel="icon" type="image/png" href="{SWAGGER}/favicon-32x32.png">',
                path="/",
            )
        ],
    )
