"""Order requests from any process to the one that runs the books, over Redis.

Only the elected process holds the books (``Trading.start``); the others forward what their
users ask for and wait for the answer, so every process answers the same:

* a forwarder RPUSHes the request on ``<prefix>:trading:requests`` with its id, a deadline and
  its own reply channel ``<prefix>:trading:replies:<process>``, then waits on a future;
* the leader's consumer BLPOPs (FIFO), runs each request through the ``serve`` it was given
  (``router.py``: the local books) as its own task, so forwarded requests share the writers'
  group commits like local ones, and PUBLISHes the outcome (the order, or the refusal's code
  and message, from which the forwarder raises the same error class);
* each process reads its reply channel on one pub/sub connection and settles the futures.

A request no one answers in ``order_timeout_seconds`` is a 503 ``retry``: the leader may still
apply it later, and a retry with the same client_order_id is safe.  The leader drops requests
whose deadline has passed (their sender gave up).  Deadlines are wall-clock times, so the
processes' clocks are assumed to agree (NTP) to well within that timeout.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from decimal import Decimal
from typing import Any

import msgspec
import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from backend.errors import DomainError, rebuilt
from backend.trading.commands import (
    AmendOrder,
    CancelOrder,
    OrderRequest,
    PlaceOrder,
    Withdraw,
    WriterUnavailable,
)
from backend.trading.orders import OrderState
from backend.trading.writer import Outcome

log = structlog.get_logger(__name__)

# The consumer blocks this long per BLPOP; a short wait also notices a dead connection soon.
POP_WAIT_SECONDS = 5.0
# After a BLPOP, up to this many more are taken at once (one round trip), so a burst reaches
# the writers together and fills their batches.
POP_MORE = 499
# Forwarded requests the leader works on at once.  Overflow policy: it stops popping, so the
# rest wait in Redis (and expire at their deadline) instead of piling up in this process.
IN_FLIGHT_MAX = 5_000
# The queue keeps at most this many requests.  Overflow policy: the oldest go first; they are
# the nearest to their deadline, and their senders answer 503 retry.
QUEUE_MAX = 100_000
# Pub/sub reconnect back-off, in seconds.
BACKOFF = (0.1, 0.5, 1.0, 2.0)


class TopUp(msgspec.Struct, frozen=True):
    """The faucet, run where the funds mirror lives (the mirror must see the credit)."""

    user_id: int
    assets: list[str] | None
    levels: dict[str, Decimal]


ForwardedRequest = PlaceOrder | CancelOrder | AmendOrder | TopUp | Withdraw
_KINDS: dict[str, type[ForwardedRequest]] = {
    "place": PlaceOrder,
    "cancel": CancelOrder,
    "amend": AmendOrder,
    "top_up": TopUp,
    "withdraw": Withdraw,
}
_KIND_OF = {kind: name for name, kind in _KINDS.items()}

Reply = Outcome | list[tuple[str, int]] | None
"""The order after the request; for a top-up, each asset and the units added; for a
withdrawal's debit, nothing (it happened)."""
Serve = Callable[[str, ForwardedRequest], Awaitable[Reply]]
"""Runs a forwarded request (for the market named) on the books of the process that runs them;
raises DomainError to refuse it."""


class Ask(msgspec.Struct, frozen=True):
    id: str
    reply_to: str
    deadline: float
    """Unix time after which the sender no longer waits."""
    kind: str
    market: str
    body: msgspec.Raw


class Refusal(msgspec.Struct, frozen=True):
    """A DomainError: its code names its class (``errors.rebuilt``)."""

    code: str
    message: str


class Answer(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    order: OrderState | None = None
    created: bool = False
    topped: list[tuple[str, int]] | None = None
    error: Refusal | None = None
    failed: bool = False
    """The request broke something other than a rule (logged where it ran)."""


class ForwardedFailure(Exception):
    """The process that runs the books failed on a forwarded request: an internal error."""


class TradingBus:
    def __init__(self, redis: Redis, url: str, prefix: str, *, timeout: float) -> None:
        """``timeout``: how long a forwarder waits for its answer (seconds)."""
        self._redis = redis
        """The app's pool: RPUSH and PUBLISH, a round trip each."""
        # Our own two connections (the reply listener's, the consumer's blocking pop): they
        # are held for long, and the app's pool must not lose them to requests.
        self._own = Redis.from_pool(BlockingConnectionPool.from_url(url, max_connections=2))
        self._queue = f"{prefix}:trading:requests"
        self._replies = f"{prefix}:trading:replies:{uuid.uuid4().hex}"
        self._waiting: dict[str, asyncio.Future[Answer]] = {}
        self._listening = asyncio.Event()
        self.timeout = timeout

    async def submit(self, symbol: str, request: OrderRequest) -> Outcome:
        answer = await self._ask(_KIND_OF[type(request)], symbol, request)
        if answer.order is None:
            raise WriterUnavailable("the order books answered nothing: try again")
        return Outcome(answer.order, answer.created)

    async def top_up(
        self, user_id: int, assets: Collection[str] | None, levels: Mapping[str, Decimal]
    ) -> list[tuple[str, int]]:
        top_up = TopUp(user_id, None if assets is None else list(assets), dict(levels))
        answer = await self._ask("top_up", "", top_up)
        return answer.topped or []

    async def withdraw(self, request: Withdraw) -> None:
        """The debit, done where the funds mirror lives; raises its refusal."""
        await self._ask("withdraw", "", request)

    async def _ask(self, kind: str, market: str, body: object) -> Answer:
        request_id = uuid.uuid4().hex
        ask = Ask(
            request_id,
            self._replies,
            time.time() + self.timeout,
            kind,
            market,
            msgspec.Raw(msgspec.json.encode(body)),
        )
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        try:
            async with asyncio.timeout(self.timeout):
                await self._listening.wait()  # a reply published before we listen is lost
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.rpush(self._queue, msgspec.json.encode(ask))
                    pipe.ltrim(self._queue, -QUEUE_MAX, -1)
                    # No leader for a while: what no one took goes away by itself.
                    pipe.expire(self._queue, math.ceil(self.timeout) + 1)
                    await pipe.execute()
                result = await answer
        except TimeoutError:
            raise WriterUnavailable(
                "the order books did not answer in time; "
                "a retry with the same client_order_id is safe"
            ) from None
        except (RedisError, OSError) as exc:
            log.warning("trading_forward_failed", error=repr(exc))
            raise WriterUnavailable(
                "the order books are out of reach; a retry with the same client_order_id is safe"
            ) from None
        finally:
            self._waiting.pop(request_id, None)
        if result.error is not None:
            raise rebuilt(result.error.code, result.error.message)
        if result.failed:
            raise ForwardedFailure("the process that runs the order books failed on this")
        return result

    async def listen(self) -> None:
        """Read this process's reply channel for good (the caller owns and cancels the task)."""
        failures = 0
        while True:
            pubsub = self._own.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._replies)
                self._listening.set()
                failures = 0
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self._settle(message["data"])
            except (RedisError, OSError) as exc:
                log.warning("trading_replies_disconnected", error=repr(exc))
                await asyncio.sleep(BACKOFF[min(failures, len(BACKOFF) - 1)])
                failures += 1
            finally:
                self._listening.clear()
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _settle(self, data: bytes) -> None:
        try:
            answer = msgspec.json.decode(data, type=Answer)
        except msgspec.DecodeError:
            log.exception("trading_reply_unreadable")
            return
        waiting = self._waiting.get(answer.id)
        if waiting is not None and not waiting.done():
            waiting.set_result(answer)

    async def consume(self, serve: Serve) -> None:
        """Take forwarded requests and run them through ``serve`` while this process runs the
        books (cancelled when it stops: its lease is lost or the app shuts down)."""
        slots = asyncio.Semaphore(IN_FLIGHT_MAX)
        failures = 0
        async with asyncio.TaskGroup() as group:
            while True:
                try:
                    popped = await self._pop()
                    failures = 0
                except (RedisError, OSError) as exc:
                    log.warning("trading_bus_pop_failed", error=repr(exc))
                    await asyncio.sleep(BACKOFF[min(failures, len(BACKOFF) - 1)])
                    failures += 1
                    continue
                for raw in popped:
                    await slots.acquire()
                    task = group.create_task(self._serve(raw, serve))
                    task.add_done_callback(lambda _: slots.release())

    async def _pop(self) -> list[bytes]:
        """The next requests, oldest first: one blocking pop, then whatever else is there."""
        first: Any = self._own.blpop([self._queue], timeout=POP_WAIT_SECONDS)
        popped = await first
        if popped is None:
            return []
        rest: Any = self._own.lpop(self._queue, POP_MORE)
        return [popped[1], *(await rest or [])]

    async def _serve(self, raw: bytes, serve: Serve) -> None:
        """One forwarded request; never raises (an error would stop the whole consumer)."""
        try:
            ask = msgspec.json.decode(raw, type=Ask)
            body = msgspec.json.decode(ask.body, type=_KINDS[ask.kind])
        except (msgspec.DecodeError, KeyError):
            log.exception("trading_request_unreadable")
            return
        if time.time() > ask.deadline:
            log.info("trading_request_expired", kind=ask.kind, late=time.time() - ask.deadline)
            return
        try:
            reply = await serve(ask.market, body)
        except DomainError as refused:
            answer = Answer(ask.id, error=Refusal(refused.code, refused.message))
        except Exception:
            log.exception("trading_forwarded_request_failed", kind=ask.kind)
            answer = Answer(ask.id, failed=True)
        else:
            if isinstance(reply, Outcome):
                answer = Answer(ask.id, order=reply.order, created=reply.created)
            else:
                answer = Answer(ask.id, topped=reply)
        try:
            await self._redis.publish(ask.reply_to, msgspec.json.encode(answer))
        except (RedisError, OSError) as exc:
            log.warning("trading_reply_failed", error=repr(exc))

    async def close(self) -> None:
        await self._own.aclose()
