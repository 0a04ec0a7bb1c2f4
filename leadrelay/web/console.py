"""The web console: GET / and its static files, under a Content-Security-Policy.

No build step: the page is plain HTML, CSS and ES modules in `console/` beside this file.
pusher-js comes from Pusher's CDN at a pinned version checked by Subresource Integrity, or,
when `console_pusher_js` names a local copy, from the daemon itself.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from leadrelay.errors import NotFound
from leadrelay.pusher import config as pusher_config
from leadrelay.web.state import state

log = logging.getLogger("leadrelay.console")

ASSETS = Path(__file__).parent / "console"
PUSHER_JS_VERSION = "8.6.0"
PUSHER_JS_CDN = f"https://js.pusher.com/{PUSHER_JS_VERSION}/pusher.min.js"
# sha384 of npm's pusher-js@8.6.0 dist/web/pusher.min.js (the CDN serves that build)
PUSHER_JS_SRI = "sha384-yz6oLe92Sren05O3WPhu8DK05E9PEkh7kTQJ819acmwKwcCMwJXGu9Kta5wYhfaJ"
# the build that opens private-encrypted- channels (encrypted_channels = true)
PUSHER_JS_ENCRYPTED_CDN = f"https://js.pusher.com/{PUSHER_JS_VERSION}/pusher-with-encryption.min.js"
PUSHER_JS_ENCRYPTED_SRI = "sha384-pYFayNmFTq10y7XqhtGrFp6x1ZevpYi0O8M/yGdtx7tm2ubLgj0zTXzp5yMXIIgo"
LOCAL_PUSHER_PATH = "/console/pusher.min.js"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
# what may be fetched: the files shipped beside index.html, by name (nothing else on disk);
# index.html itself only as GET /, with pusher-js put in
SHIPPED = {p.name for p in ASSETS.glob("*") if p.suffix in CONTENT_TYPES} - {"index.html"}


def content_security_policy(ws_origins: list[str], script_origin: str | None) -> str:
    scripts = "'self'" + (f" {script_origin}" if script_origin else "")
    connect = " ".join(["'self'", *ws_origins])
    return (
        "default-src 'none'; "
        f"script-src {scripts}; "
        "style-src 'self'; "
        "img-src 'self' data:; "
        f"connect-src {connect}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def security_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


def _pusher_script(local: bool, encrypted: bool) -> str:
    if local:
        return f'<script src="{LOCAL_PUSHER_PATH}"></script>'
    url, sri = (
        (PUSHER_JS_ENCRYPTED_CDN, PUSHER_JS_ENCRYPTED_SRI)
        if encrypted
        else (PUSHER_JS_CDN, PUSHER_JS_SRI)
    )
    return (
        f'<script src="{html.escape(url)}" integrity="{sri}" '
        'crossorigin="anonymous" referrerpolicy="no-referrer"></script>'
    )


async def _ws_origins(request: Request) -> list[str]:
    """The websocket server the page may talk to: the configured one, nothing else."""
    config = await pusher_config.load(state(request).store)
    if not config.key:
        return []
    scheme = "wss" if config.tls else "ws"
    return [f"{scheme}://{config.ws_host}:{config.server_port}"]


async def index(request: Request) -> Response:
    settings = state(request).settings
    local = bool(settings.console_pusher_js)
    page = (ASSETS / "index.html").read_text()
    page = page.replace("<!--pusher-js-->", _pusher_script(local, settings.encrypted_channels))
    csp = content_security_policy(
        await _ws_origins(request), None if local else "https://js.pusher.com"
    )
    return HTMLResponse(page, headers=security_headers(csp))


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    headers = security_headers(content_security_policy([], None))
    if name == "pusher.min.js":
        return _local_pusher_js(request, headers)
    if name not in SHIPPED:
        raise NotFound(f"the console has no file {name}", code="not_found")
    path = ASSETS / name
    return FileResponse(path, media_type=CONTENT_TYPES[path.suffix], headers=headers)


def _local_pusher_js(request: Request, headers: dict[str, str]) -> Response:
    configured = state(request).settings.console_pusher_js
    if not configured:
        raise NotFound(
            f"pusher-js comes from {PUSHER_JS_CDN}; set console_pusher_js to serve a local copy",
            code="not_found",
        )
    path = Path(configured).expanduser()
    if not path.is_file():
        log.warning("console_pusher_js names %s, which is not a file", path)
        raise NotFound(
            "the daemon's console_pusher_js file is missing; its log names the path",
            code="pusher_js_missing",
        )
    return FileResponse(path, media_type=CONTENT_TYPES[".js"], headers=headers)
