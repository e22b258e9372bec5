"""The webhook route: Telegram posts updates here; they are fed to the aiogram Dispatcher."""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
import structlog
from aiogram import Bot, Dispatcher
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency

from backend.auth.ratelimit import RATE_LIMIT_OPT
from backend.auth.sessions import PUBLIC
from backend.config import Settings
from backend.errors import BadRequest, Unauthorized

log = structlog.get_logger(__name__)

# Message text is capped at 4096 characters, but an update also carries entities, reply
# markup and a quoted message: 256 KiB is far above any real one and still bounds memory.
MAX_UPDATE_BYTES = 256 * 1024


class BotWebhookController(Controller):
    path = "/bot/webhook"
    include_in_schema = False
    # Telegram posts from a few addresses at high rates: the per-address write limit is not for it.
    opt = {**PUBLIC, RATE_LIMIT_OPT: "none"}

    @post(request_max_body_size=MAX_UPDATE_BYTES, status_code=200)
    async def receive(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
        dispatcher: NamedDependency[Dispatcher],
        bot: NamedDependency[Bot],
    ) -> Response[None]:
        expected = settings.bot.webhook_secret.encode()
        given = request.headers.get("x-telegram-bot-api-secret-token", "").encode()
        # An empty expected secret would match an absent header: never accept that.
        if not expected or not hmac.compare_digest(given, expected):
            raise Unauthorized("bad webhook secret", code="bad_webhook_secret")
        try:
            update = msgspec.json.decode(await request.body())
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            # RecursionError: nested deeper than msgspec follows (about 1,000 levels).
            raise BadRequest("the update is not JSON", code="bad_update") from exc
        if not isinstance(update, dict):
            raise BadRequest("the update is not a JSON object", code="bad_update")
        try:
            await dispatcher.feed_raw_update(bot, update)
        except Exception:
            # Answering 200 anyway stops Telegram from redelivering an update we cannot handle.
            log.exception("bot_update_failed", update_id=update.get("update_id"))
        return Response(None, status_code=200)
