"""The one place the application is assembled: plugins, routes, middleware, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, Router
from litestar.config.compression import CompressionConfig
from litestar.datastructures import CacheControlHeader
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from backend.alerts.controllers import AlertsController
from backend.auth.controllers import AuthController, DemoAuthController
from backend.auth.csrf import SameOriginGuard
from backend.auth.ratelimit import RateLimitGuard
from backend.auth.sessions import build_auth
from backend.chains.controllers import WalletAuthController, WalletsController
from backend.chains.deposit_queries import ChainDeposits
from backend.chains.deposit_routes import ChainsController, DepositsController
from backend.chains.service import Wallets
from backend.chains.withdrawal_routes import WithdrawalsAdminController, WithdrawalsController
from backend.config import ROOT, Settings, load_settings
from backend.deps import provided, request_dependencies
from backend.http import exception_handlers
from backend.hub.connection import SocketRegistry
from backend.hub.controllers import HubController
from backend.inputs import check_request
from backend.notify.controllers import NotificationSettingsController, NotifyAdminController
from backend.openapi import document_errors
from backend.ops.health import HealthController
from backend.ops.logging import RequestContextMiddleware, configure_logging
from backend.ops.metrics import MetricsController, MetricsReaders, prometheus
from backend.points.badge_routes import BadgeController
from backend.points.controllers import (
    BalancesController,
    PointsAdminController,
    PointsController,
    ReferralsController,
)
from backend.resources import Resources
from backend.signals.controllers import SignalsController
from backend.trading.controllers import (
    FaucetController,
    MarketsController,
    MyTradesController,
    OrdersController,
)
from backend.users.controllers import AdminController, MeController
from backend.web.assets import AssetManifest
from backend.web.controllers import PageController

STATIC_DIR = ROOT / "static"
TEMPLATE_DIR = ROOT / "webapp" / "templates"
# Asset URLs carry a content hash (see web/assets.py), so a year-long cache is safe.
STATIC_CACHE = CacheControlHeader(max_age=365 * 24 * 3600, public=True)
# Litestar takes 10 MB by default; the largest body a client of ours sends is a few kilobytes.
MAX_REQUEST_BYTES = 64 * 1024

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    configure_logging(settings.log.level)
    # Built now, connected in the lifespan: the routes, guards and middleware get their
    # services handed over here instead of looking them up in the app's state.
    resources = Resources.open(settings)
    auth = build_auth(settings, resources.db)
    sockets = SocketRegistry(resources.hub, resources.db, auth, settings)
    bot_runtime = None
    if settings.bot.token:
        from bot.runtime import BotRuntime

        bot_runtime = BotRuntime.create(
            settings, resources.db, resources.leaderboard, resources.hub.backend
        )
    assets = AssetManifest(STATIC_DIR)

    def template_globals(engine: JinjaTemplateEngine) -> None:
        engine.engine.globals["asset"] = assets.url

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await resources.start()
        sockets.start()
        if bot_runtime is not None and settings.notify.in_app:
            resources.start_notifier(bot_runtime.bot)
        log.info(
            "started",
            database=resources.db.dialect,
            redis=bool(resources.redis),
            bot="on" if bot_runtime else "off (no BOT_TOKEN)",
        )
        try:
            yield
        finally:
            if bot_runtime is not None:
                await bot_runtime.close()
            await sockets.close()
            await resources.close()

    services = {
        "settings": provided(settings),
        "db": provided(resources.db),
        "redis": provided(resources.redis),
        "hub": provided(resources.hub),
        "limiter": provided(resources.limiter),
        "auth": provided(auth),
        "points": provided(resources.points),
        "leaderboard": provided(resources.leaderboard),
        "trading": provided(resources.trading_router),
        "signals": provided(resources.signals),
        "wallets": provided(Wallets(resources.points, settings)),
        "chain_deposits": provided(ChainDeposits(settings.chains)),
        "withdrawals": provided(resources.withdrawals),
        "registry": provided(sockets),
    }
    if bot_runtime is not None:
        services["bot"] = provided(bot_runtime.bot)
        services["dispatcher"] = provided(bot_runtime.dispatcher)
    metrics_ips = settings.app.metrics_allow_ips

    handlers: list[ControllerRouterHandler] = [
        PageController,
        AuthController,
        MeController,
        AdminController,
        BalancesController,
        PointsController,
        ReferralsController,
        PointsAdminController,
        WalletsController,
        WalletAuthController,
        ChainsController,
        DepositsController,
        WithdrawalsController,
        WithdrawalsAdminController,
        AlertsController,
        MarketsController,
        OrdersController,
        MyTradesController,
        FaucetController,
        SignalsController,
        NotifyAdminController,
        NotificationSettingsController,
        HealthController,
        HubController,
        Router("", route_handlers=[MetricsController], guards=[MetricsReaders(metrics_ips)]),
        BadgeController,
        create_static_files_router(
            path="/static",
            directories=[STATIC_DIR],
            cache_control=STATIC_CACHE,
            opt={"exclude_from_auth": True},
        ),
    ]
    if settings.demo_login:
        handlers.append(DemoAuthController)
    if settings.bot.token:
        from bot.webhook import BotWebhookController

        handlers.append(BotWebhookController)

    app = Litestar(
        route_handlers=handlers,
        dependencies={**request_dependencies, **services},
        guards=[SameOriginGuard(settings.app.base_url), RateLimitGuard(resources.limiter)],
        exception_handlers=exception_handlers,
        before_request=check_request,
        middleware=[
            DefineMiddleware(RequestContextMiddleware, access_log=settings.log.requests),
            prometheus.middleware,
        ],
        on_app_init=[auth.on_app_init],
        # Every JSON body the API takes is small; a route that needs more says so itself.
        request_max_body_size=MAX_REQUEST_BYTES,
        lifespan=[lifespan],
        template_config=TemplateConfig(
            directory=TEMPLATE_DIR, engine=JinjaTemplateEngine, engine_callback=template_globals
        ),
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024),
        openapi_config=OpenAPIConfig(
            title=f"{settings.app.name} API",
            version="0.1.0",
            path="/schema",
            # Served from static/vendor: the docs work with no internet, like the app.
            render_plugins=[
                SwaggerRenderPlugin(
                    js_url=assets.url("vendor/swagger-ui/swagger-ui-bundle.js"),
                    css_url=assets.url("vendor/swagger-ui/swagger-ui.css"),
                    standalone_preset_js_url=assets.url(
                        "vendor/swagger-ui/swagger-ui-standalone-preset.js"
                    ),
                    path="/",
                    favicon="",
                )
            ],
        ),
        logging_config=None,  # configure_logging() owns logging: JSON lines, no queue thread
        debug=False,
    )
    document_errors(app)
    # For operators' scripts and the tests; nothing in the app reads these back.
    app.state.resources = resources
    app.state.sockets = sockets
    app.state.auth = auth
    return app


def app_factory() -> Any:
    """Entry point for ``uvicorn --factory backend.app:app_factory``."""
    return create_app()
