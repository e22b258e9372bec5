"""A local HTTP server that answers like the Telegram Bot API, recording every call.

The real aiogram Bot talks to it over HTTP (aiogram's API-server setting points here), so the
bot's requests are checked as Telegram would receive them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "SimplRefQ", "username": "SimplRefQBot"}


# What the Bot API says for each failure, word for word; aiogram picks its exception from the
# status and ``parameters`` (TelegramRetryAfter, TelegramForbiddenError, TelegramServerError,
# TelegramBadRequest), the description is only carried along.
_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    403: "Forbidden: bot was blocked by the user",
    502: "Bad Gateway",
}


@dataclass(frozen=True)
class Reply:
    """One scripted answer to sendMessage: a status, and for 429 the seconds to back off."""

    status: int = 200
    retry_after: int | None = None
    delay: float = 0.0  # seconds to sit on the request first: a slow Telegram
    description: str = ""

    def error_body(self) -> dict[str, Any]:
        description = self.description
        if not description and self.status == 429:
            description = f"Too Many Requests: retry after {self.retry_after}"
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": description or _DESCRIPTIONS.get(self.status, "Error"),
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class FakeBotAPI:
    calls: list[Call] = field(default_factory=list)
    updates: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    url: str = ""
    _runner: web.AppRunner | None = None
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _scripts: defaultdict[int, deque[Reply]] = field(default_factory=lambda: defaultdict(deque))

    async def start(self) -> FakeBotAPI:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def script(self, chat_id: int, *responses: Reply) -> None:
        """Answer the next sendMessage calls to ``chat_id`` with these, in order; after them
        (and for every other chat) the answer is 200 again."""
        self._scripts[chat_id].extend(responses)

    def sent(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(self, method: str, count: int = 1, within: float = 5.0) -> list[Call]:
        deadline = time.monotonic() + within
        while len(self.sent(method)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} was not called {count} time(s): {self.calls}")
            await asyncio.sleep(0.02)
        return self.sent(method)

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _params(request)
        reply = self._next_reply(method, params)
        call = Call(method=method, params=params, at=time.monotonic(), status=reply.status)
        self.calls.append(call)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            return web.json_response(reply.error_body(), status=reply.status)
        result = await self._result(method, params)
        return web.json_response({"ok": True, "result": result})

    def _next_reply(self, method: str, params: dict[str, Any]) -> Reply:
        if method != "sendMessage":
            return Reply()
        try:
            chat_id = int(params["chat_id"])
        except (KeyError, TypeError, ValueError):  # "@channel" names are never scripted
            return Reply()
        queued = self._scripts.get(chat_id)
        return queued.popleft() if queued else Reply()

    async def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method == "getUpdates":
            try:
                return [await asyncio.wait_for(self.updates.get(), timeout=0.5)]
            except TimeoutError:
                return []
        if method == "sendMessage":
            return {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": int(params["chat_id"]), "type": "private"},
                "from": BOT_USER,
                "text": params.get("text", ""),
            }
        return True


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        return dict(await request.json())
    form = await request.post()
    params: dict[str, Any] = {}
    for key, value in form.items():
        text = value if isinstance(value, str) else str(value)
        try:
            params[key] = json.loads(text) if text[:1] in "[{" else text
        except ValueError:
            params[key] = text
    return params


def message_update(
    update_id: int, telegram_id: int, text: str, first_name: str = "Ada", language: str = "en"
) -> dict[str, Any]:
    user = {"id": telegram_id, "is_bot": False, "first_name": first_name, "language_code": language}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": telegram_id, "type": "private", "first_name": first_name},
            "from": user,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


def callback_update(
    update_id: int, telegram_id: int, data: str, message_id: int = 1, language: str = "en"
) -> dict[str, Any]:
    """A tap on an inline button under the bot's message ``message_id``."""
    user = {"id": telegram_id, "is_bot": False, "first_name": "Ada", "language_code": language}
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cq-{update_id}",
            "from": user,
            "chat_instance": "1",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": telegram_id, "type": "private", "first_name": "Ada"},
                "from": BOT_USER,
                "text": "settings",
            },
        },
    }
