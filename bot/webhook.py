"""The webhook route: Telegram posts updates here; they are fed to the aiogram Dispatcher."""

from __future__ import annotations

import hmac
from typing import Any

import structlog
from litestar import Controller, Request, Response, post

from backend.auth.ratelimit import RATE_LIMIT_OPT
from backend.auth.sessions import PUBLIC
from backend.errors import Unauthorized

log = structlog.get_logger(__name__)

# Updates are small; Telegram caps message text at 4096 characters.
MAX_UPDATE_BYTES = 256 * 1024


class BotWebhookController(Controller):
    path = "/bot/webhook"
    include_in_schema = False
    # Telegram posts from a few addresses at high rates: the per-address write limit is not for it.
    opt = {**PUBLIC, RATE_LIMIT_OPT: "none"}

    @post(request_max_body_size=MAX_UPDATE_BYTES, status_code=200)
    async def receive(self, request: Request[Any, Any, Any]) -> Response[None]:
        expected = request.app.state.resources.settings.bot.webhook_secret.encode()
        given = request.headers.get("x-telegram-bot-api-secret-token", "").encode()
        if not hmac.compare_digest(given, expected):
            raise Unauthorized("bad webhook secret", code="bad_webhook_secret")
        update = await request.json()
        if not isinstance(update, dict):
            return Response(None, status_code=400)
        runtime = request.app.state.bot
        try:
            await runtime.dispatcher.feed_raw_update(runtime.bot, update)
        except Exception:
            # Answering 200 anyway stops Telegram from redelivering an update we cannot handle.
            log.exception("bot_update_failed", update_id=update.get("update_id"))
        return Response(None, status_code=200)
