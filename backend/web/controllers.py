"""The mini-app page."""

from __future__ import annotations

from litestar import Controller, MediaType, get
from litestar.di import NamedDependency
from litestar.response import Template

from backend.auth.sessions import PUBLIC
from backend.config import Settings

# Telegram's own script is the one thing loaded from elsewhere; Telegram Web frames the app.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' https://telegram.org",
        "style-src 'self'",
        "img-src 'self' data: https:",
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'self' https://web.telegram.org https://*.telegram.org",
        "base-uri 'none'",
        "form-action 'self'",
    ]
)


class PageController(Controller):
    opt = PUBLIC
    include_in_schema = False

    @get("/", media_type=MediaType.HTML)
    async def index(self, settings: NamedDependency[Settings]) -> Template:
        """The mini-app shell; the tabs fill in as their features land."""
        return Template(
            template_name="index.html",
            context={
                "app_name": settings.app.name,
                "demo_login": settings.demo_login,
                "bot_username": settings.bot.username,
            },
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "strict-origin-when-cross-origin",
            },
        )

    @get("/tonconnect-manifest.json", media_type=MediaType.JSON)
    async def tonconnect_manifest(self, settings: NamedDependency[Settings]) -> dict[str, str]:
        """TON Connect's app manifest: wallets sign its `url`'s host into every ton_proof, and
        the server checks that domain against its own, so both come from APP_PUBLIC_URL."""
        base = settings.app.base_url
        return {
            "url": base,
            "name": settings.app.name,
            "iconUrl": f"{base}/static/tonconnect-icon.png",
        }
