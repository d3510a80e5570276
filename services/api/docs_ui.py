"""`/docs`: Swagger UI served from the `swagger-ui-bundle` package, so it renders offline (no CDN); no ReDoc.

The bundled Swagger UI (4.x) renders OpenAPI 3.0 only, and FastAPI writes 3.1, so the UI reads a 3.0 rendering of
the same document at `/docs/openapi.json` (`anyOf [X, null]` becomes `nullable`); `/openapi.json` stays the truth.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"
UI_DOCUMENT = "/docs/openapi.json"


def install(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=UI_DOCUMENT,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get(UI_DOCUMENT, include_in_schema=False)
    async def ui_document() -> JSONResponse:
        return JSONResponse(as_openapi_30(app.openapi()))


def as_openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """The 3.1 document as 3.0 for the UI: nullable instead of a null type, one `example` instead of `examples`,
    `enum` instead of `const`, no `if`/`then` or `contentMediaType`."""
    out = _downgrade(copy.deepcopy(document))
    out["openapi"] = "3.0.3"
    return out


def _downgrade(node: Any) -> Any:
    if isinstance(node, list):
        return [_downgrade(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _downgrade(value) for key, value in node.items()}
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            node.pop(key)
            if len(rest) == 1:
                node.update(rest[0] if "$ref" not in rest[0] else {"allOf": rest})
            else:
                node[key] = rest
            node["nullable"] = True
    if isinstance(node.get("type"), list):
        types = [t for t in node["type"] if t != "null"]
        node["type"] = types[0] if len(types) == 1 else types
        node["nullable"] = True
    for key in ("if", "then", "else", "contentMediaType"):  # 3.1 only; the UI shows the fields without them
        node.pop(key, None)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if isinstance(node.get("examples"), list):  # a schema's list (3.1); a parameter's `examples` is a map
        examples = node.pop("examples")
        if examples:
            node["example"] = examples[0]
    return node
