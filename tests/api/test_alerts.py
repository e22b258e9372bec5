"""Price alerts: the API through the real server, and the watcher firing each alert exactly once
through the outbox (and the user's private topic), on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import event
from sqlmodel import col, select

from backend.alerts.models import Direction, PriceAlert
from backend.alerts.service import MAX_ACTIVE_ALERTS, cancel_alert, create_alert
from backend.alerts.watcher import AlertWatcher
from backend.auth.signin import sign_in
from backend.db.engine import Database
from backend.db.uow import unit_of_work
from backend.hub.backends.memory import MemoryBackend
from backend.market.feed import MarketFeed
from backend.notify.limiter import MemoryLimiter
from backend.notify.models import Notification
from backend.notify.worker import NotificationWorker
from backend.testing.fake_bot_api import FakeBotAPI
from backend.users.service import TelegramProfile
from bot.runtime import create_bot
from tests.helpers import (
    REDIS_PREFIX,
    RunningServer,
    Server,
    drain,
    make_settings,
    receive,
    settings_for,
    signed_in,
    subscribe,
    with_backend,
    ws_url,
)

TON = "TON-USDT"


async def set_prices(server: Server, ton: str = "5.2000", **others: str) -> None:
    """Publish the `prices` state as the feed would, with only the markets named."""
    prices = {TON: ton, **{symbol.replace("_", "-"): p for symbol, p in others.items()}}
    markets = {symbol: {"price": p, "change_24h": "0.00", "ts": 1} for symbol, p in prices.items()}
    await server.app.state.resources.hub.publish(
        "prices", "delta", {"markets": markets}, state={"markets": markets}
    )


async def new_alert(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/api/alerts", json={"market": TON, **body}, headers=auth)


# --- the API -----------------------------------------------------------------------------------


async def test_alerts_are_set_listed_and_cancelled(
    client: httpx.AsyncClient, server: Server, telegram_id: int
) -> None:
    _, auth = await signed_in(client, telegram_id)
    await set_prices(server)
    up = await new_alert(client, auth, price="6")
    assert up.status_code == 201, up.text
    view = up.json()
    assert (view["market"], view["direction"], view["price"], view["status"]) == (
        TON,
        "above",
        "6.0000",
        "active",
    )
    assert view["fired_at"] is None and view["fired_price"] is None and view["created_at"]
    down = (await new_alert(client, auth, price="4.5")).json()
    assert down["direction"] == "below"
    # An explicit direction is kept, even on the side the price is already past.
    odd = (await new_alert(client, auth, price="7.0000", direction="below")).json()
    assert odd["direction"] == "below"

    listed = (await client.get("/api/alerts", headers=auth)).json()
    assert [a["id"] for a in listed] == [odd["id"], down["id"], view["id"]]
    assert (await client.delete(f"/api/alerts/{odd['id']}", headers=auth)).status_code == 204
    assert (await client.delete(f"/api/alerts/{odd['id']}", headers=auth)).status_code == 204
    active = (await client.get("/api/alerts?status=active", headers=auth)).json()
    assert [a["id"] for a in active] == [down["id"], view["id"]]
    cancelled = (await client.get("/api/alerts?status=cancelled", headers=auth)).json()
    assert [(a["id"], a["status"]) for a in cancelled] == [(odd["id"], "cancelled")]
    everything = (await client.get("/api/alerts?status=all&limit=2", headers=auth)).json()
    assert [a["id"] for a in everything] == [odd["id"], down["id"]]
    bad = await client.get("/api/alerts?status=nope", headers=auth)
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"market": "DOGE-USDT", "price": "1"}, 400, "unknown_market"),
        ({"price": "5.20001"}, 400, "invalid_price"),
        ({"market": "ETH-USDT", "price": "3500.005"}, 400, "invalid_price"),
        ({"price": "0"}, 400, "invalid_price"),
        ({"price": "-1.5"}, 400, "invalid_price"),
        ({"price": "461168601842738.7904"}, 400, "invalid_price"),  # 2**62 ticks
        ({"price": "9" * 40}, 400, "invalid_price"),
        ({"price": "9" * 41}, 400, "bad_request"),  # longer than any price
        ({"price": "1e-99999999"}, 400, "invalid_price"),  # no exponents: this one reads as 0
        ({"price": "6_000"}, 400, "invalid_price"),
        ({"price": "five"}, 400, "invalid_price"),
        ({"price": "NaN"}, 400, "invalid_price"),
        ({"price": "5.2000"}, 409, "price_is_current"),
        ({"price": "5.2"}, 409, "price_is_current"),
        ({"market": "BNB-USDT", "price": "700"}, 409, "no_price"),
        ({"price": "6", "direction": "sideways"}, 400, "bad_request"),
        ({"price": 6}, 400, "bad_request"),
        ({"price": "6", "note": "unknown field"}, 400, "bad_request"),
    ],
)
async def test_bad_alerts_are_refused_with_a_reason(
    client: httpx.AsyncClient,
    server: Server,
    telegram_id: int,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    _, auth = await signed_in(client, telegram_id)
    await set_prices(server, ETH_USDT="3500.00")  # BNB has no price yet
    response = await new_alert(client, auth, **body)
    assert (response.status_code, response.json()["error"]) == (status, code), response.text
    assert (await client.get("/api/alerts?status=all", headers=auth)).json() == []


async def test_a_largest_price_and_an_explicit_direction_need_no_quote(
    client: httpx.AsyncClient, server: Server, telegram_id: int
) -> None:
    _, auth = await signed_in(client, telegram_id)
    await set_prices(server)
    response = await new_alert(
        client, auth, market="BNB-USDT", price="46116860184273879.03", direction="above"
    )
    assert response.status_code == 201, response.text
    assert response.json()["price"] == "46116860184273879.03"  # 2**62 - 1 ticks


async def test_only_signed_in_users_see_or_set_alerts(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/api/alerts"),
        await client.post("/api/alerts", json={"market": TON, "price": "6"}),
        await client.delete("/api/alerts/1"),
    ):
        assert response.status_code == 401, response.text


async def test_someone_elses_alert_is_as_unknown_as_a_missing_one(
    client: httpx.AsyncClient, server: Server, telegram_id: int, new_telegram_id: Any
) -> None:
    _, owner = await signed_in(client, telegram_id)
    _, other = await signed_in(client, new_telegram_id())
    await set_prices(server)
    alert = (await new_alert(client, owner, price="6")).json()
    for alert_id in (alert["id"], 2**62):
        response = await client.delete(f"/api/alerts/{alert_id}", headers=other)
        assert (response.status_code, response.json()["error"]) == (404, "alert_not_found")
    assert (await client.delete(f"/api/alerts/{2**63}", headers=other)).status_code == 400
    assert (await client.get("/api/alerts", headers=other)).json() == []
    assert [a["status"] for a in (await client.get("/api/alerts", headers=owner)).json()] == [
        "active"
    ]


async def test_at_most_twenty_active_alerts_even_when_asked_at_once(
    client: httpx.AsyncClient, server: Server, telegram_id: int
) -> None:
    _, auth = await signed_in(client, telegram_id)
    await set_prices(server)
    prices = [f"{7 + n}" for n in range(MAX_ACTIVE_ALERTS + 5)]
    responses = await asyncio.gather(*(new_alert(client, auth, price=p) for p in prices))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * MAX_ACTIVE_ALERTS + [409] * 5, [r.text for r in responses]
    assert {r.json()["error"] for r in responses if r.status_code == 409} == {"too_many_alerts"}
    active = (await client.get("/api/alerts", headers=auth)).json()
    assert len(active) == MAX_ACTIVE_ALERTS
    assert (await client.delete(f"/api/alerts/{active[0]['id']}", headers=auth)).status_code == 204
    assert (await new_alert(client, auth, price="99")).status_code == 201
    assert (await new_alert(client, auth, price="98")).status_code == 409


async def test_a_fired_alert_reaches_its_owner_after_commit_and_stays_fired(
    client: httpx.AsyncClient, server: Server, telegram_id: int
) -> None:
    user, auth = await signed_in(client, telegram_id)
    await set_prices(server)
    alert = (await new_alert(client, auth, price="5.0001")).json()
    resources = server.app.state.resources
    watcher = AlertWatcher(resources.db, resources.hub)
    async with websockets.connect(ws_url(server), additional_headers=auth) as ws:
        await subscribe(ws, f"user:{user['id']}")
        await watcher.on_prices({TON: 50_002})
        await watcher.on_prices({TON: 50_001})  # touches the threshold: that is crossing it
        frame = await receive(ws)
    data = frame["data"]
    assert data["type"] == "alert_fired" and data["id"] == alert["id"]
    assert (data["direction"], data["price"], data["fired_price"]) == ("below", "5.0001", "5.0001")
    fired = (await client.get("/api/alerts?status=fired", headers=auth)).json()
    assert [(a["id"], a["fired_price"]) for a in fired] == [(alert["id"], "5.0001")]
    assert fired[0]["fired_at"] is not None
    again = await client.delete(f"/api/alerts/{alert['id']}", headers=auth)
    assert (again.status_code, again.json()["error"]) == (409, "alert_fired")
    async with resources.db.reads() as session:
        rows = (await session.exec(select(Notification).filter_by(user_id=user["id"]))).all()
    assert [(row.kind, row.dedupe_key) for row in rows] == [
        ("price_alert", f"price_alert:{alert['id']}")
    ]


async def test_the_apps_market_feed_fires_alerts(
    backend: dict[str, Any], tmp_path: Path, telegram_id: int
) -> None:
    """The wiring: wherever the feed runs (the leader, with Redis), the watcher follows it."""
    feed = {"feed": "simulator", "interval_seconds": 0.05}
    # A prefix of its own: the feed's leader lease outlives the server by a few seconds.
    redis = {"key_prefix": f"{REDIS_PREFIX}-alerts"}
    # No books here: the session's server runs them on this database, and a second process
    # running them would take the term from it (backend/trading/term.py).
    env = with_backend(backend, market=feed, redis=redis, trading={"enabled": False})
    settings = make_settings(tmp_path, **env)
    async with RunningServer(settings) as server, server.client() as client:
        user, auth = await signed_in(client, telegram_id)
        async with websockets.connect(ws_url(server), additional_headers=auth) as ws:
            await subscribe(ws, f"user:{user['id']}")
            # Already true of any price: it fires once the watcher's cache sees it (<= 2 s).
            alert = (await new_alert(client, auth, price="0.0001", direction="above")).json()
            frame = await receive(ws, within=10)
        assert frame["data"]["type"] == "alert_fired" and frame["data"]["id"] == alert["id"]
        fired = (await client.get("/api/alerts?status=fired", headers=auth)).json()
        assert [a["id"] for a in fired] == [alert["id"]]


# --- the watcher -------------------------------------------------------------------------------


class RecordingHub:
    """Keeps what the watcher publishes, and whether the alert was committed at that moment."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.events: list[tuple[str, dict[str, Any], str | None]] = []

    async def publish(
        self, topic: str, kind: str, data: dict[str, Any], *, state: Any = None
    ) -> int:
        async with self.db.reads() as session:  # another connection: sees committed rows only
            stored = await session.get(PriceAlert, data.get("id"))
        self.events.append((topic, data, stored.status if stored else None))
        return len(self.events)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def make_users(db: Database, count: int, first: int = 8_000_000) -> list[int]:
    ids = []
    async with unit_of_work(db) as uow:
        for n in range(count):
            user = (await sign_in(uow, TelegramProfile(first + n, f"user{n}"))).user
            assert user.id is not None
            ids.append(user.id)
    return ids


async def add_alert(db: Database, user_id: int, price: str, direction: Direction) -> int:
    async with unit_of_work(db) as uow:
        alert = await create_alert(uow, MemoryBackend(), user_id, TON, price, direction)
    assert alert.id is not None
    return alert.id


async def outbox(db: Database) -> list[Notification]:
    async with db.reads() as session:
        result = await session.exec(select(Notification).order_by(col(Notification.id)))
        return list(result.all())


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement the database is sent meanwhile."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def test_above_and_below_fire_once_when_the_price_crosses(db: Database) -> None:
    (user,) = await make_users(db, 1)
    above = await add_alert(db, user, "6.0000", Direction.ABOVE)
    below = await add_alert(db, user, "4.0000", Direction.BELOW)
    hub, clock = RecordingHub(db), Clock()
    watcher = AlertWatcher(db, hub, clock=clock)
    for price in (52_000, 59_999, 40_001):
        await watcher.on_prices({TON: price})
    assert hub.events == [] and await outbox(db) == []
    await watcher.on_prices({TON: 60_500, "ETH-USDT": 1})
    await watcher.on_prices({TON: 61_000})
    await watcher.on_prices({TON: 39_000})
    await watcher.on_prices({TON: 1})
    await watcher.on_prices({TON: 70_000})
    assert [(topic, data["id"], data["fired_price"]) for topic, data, _ in hub.events] == [
        (f"user:{user}", above, "6.0500"),
        (f"user:{user}", below, "3.9000"),
    ]
    rows = await outbox(db)
    assert [(r.kind, r.dedupe_key, r.payload) for r in rows] == [
        (
            "price_alert",
            f"price_alert:{above}",
            {"market": TON, "direction": "above", "price": "6.0000", "fired_price": "6.0500"},
        ),
        (
            "price_alert",
            f"price_alert:{below}",
            {"market": TON, "direction": "below", "price": "4.0000", "fired_price": "3.9000"},
        ),
    ]


async def test_the_watcher_reads_the_database_only_to_refresh_or_on_a_crossing(
    db: Database,
) -> None:
    (user,) = await make_users(db, 1)
    await add_alert(db, user, "6.0000", Direction.ABOVE)
    clock = Clock()
    watcher = AlertWatcher(db, RecordingHub(db), clock=clock)
    await watcher.on_prices({TON: 52_000})
    assert watcher.bounds[TON].lowest_above == 60_000 and watcher.bounds[TON].highest_below is None
    with statements(db) as seen:
        for n in range(20):
            await watcher.on_prices({TON: 52_000 + n})
    assert seen == []
    # A new alert is seen once the cache is older than the refresh interval.
    nearer = await add_alert(db, user, "5.3000", Direction.ABOVE)
    await watcher.on_prices({TON: 53_000})
    assert watcher.bounds[TON].lowest_above == 60_000
    clock.now += watcher.refresh_seconds
    with statements(db) as seen:
        await watcher.on_prices({TON: 53_000})
    assert len(seen) > 0
    assert [r.dedupe_key for r in await outbox(db)] == [f"price_alert:{nearer}"]
    assert watcher.bounds[TON].lowest_above == 60_000  # refreshed right after firing


async def test_a_cancelled_alert_never_fires(db: Database) -> None:
    (user,) = await make_users(db, 1)
    cancelled = await add_alert(db, user, "6.0000", Direction.ABOVE)
    kept = await add_alert(db, user, "6.0000", Direction.ABOVE)
    watcher = AlertWatcher(db, RecordingHub(db))
    await watcher.on_prices({TON: 52_000})  # loads both into the cache
    async with unit_of_work(db) as uow:
        await cancel_alert(uow, user, cancelled)
    await watcher.on_prices({TON: 60_000})
    assert [r.dedupe_key for r in await outbox(db)] == [f"price_alert:{kept}"]


async def test_two_watchers_racing_on_one_crossing_fire_each_alert_once(db: Database) -> None:
    users = await make_users(db, 10)
    ids = [
        await add_alert(db, user, f"{6 + n % 3}", Direction.ABOVE) for n, user in enumerate(users)
    ]
    hubs = [RecordingHub(db), RecordingHub(db)]
    watchers = [AlertWatcher(db, hub) for hub in hubs]
    for watcher in watchers:
        await watcher.refresh()
    await asyncio.gather(*(watcher.on_prices({TON: 90_000}) for watcher in watchers))
    rows = await outbox(db)
    assert sorted(r.dedupe_key for r in rows) == sorted(f"price_alert:{i}" for i in ids)
    assert {r.kind for r in rows} == {"price_alert"}
    published = [data["id"] for hub in hubs for _, data, _ in hub.events]
    assert sorted(published) == sorted(ids)


async def test_the_event_leaves_only_after_the_commit(db: Database) -> None:
    (user,) = await make_users(db, 1)
    await add_alert(db, user, "6.0000", Direction.ABOVE)
    hub = RecordingHub(db)
    await AlertWatcher(db, hub).on_prices({TON: 60_000})
    assert [(topic, status) for topic, _, status in hub.events] == [(f"user:{user}", "fired")]


async def test_a_feed_tick_fires_alerts_and_a_failing_listener_breaks_nothing(
    db: Database,
) -> None:
    (user,) = await make_users(db, 1)
    alert = await add_alert(db, user, "5.2000", Direction.BELOW)  # the start price: first tick

    async def broken(_: dict[str, int]) -> None:
        raise RuntimeError("a listener in trouble")

    hub = RecordingHub(db)
    published: list[str] = []

    class Publisher:
        async def publish(self, topic: str, kind: Any, data: Any, *, state: Any = None) -> int:
            published.append(topic)
            return len(published)

    watcher = AlertWatcher(db, hub)
    feed = MarketFeed(Publisher(), seed=1, listeners=[broken, watcher.on_prices])
    await feed.tick()
    assert published[0] == "prices"
    assert [data["id"] for _, data, _ in hub.events] == [alert]


async def test_a_fired_alert_is_delivered_in_the_users_language(
    db: Database, telegram: FakeBotAPI, tmp_path: Path
) -> None:
    async with unit_of_work(db) as uow:
        profile = TelegramProfile(8_100_000, "Ivan", language_code="ru")
        user_id = (await sign_in(uow, profile)).user.id
    assert user_id is not None
    await add_alert(db, user_id, "6.0000", Direction.ABOVE)
    await AlertWatcher(db, RecordingHub(db)).on_prices({TON: 60_100})
    settings = settings_for(tmp_path, telegram)
    bot = create_bot(settings)
    try:
        await drain(NotificationWorker(db, bot, MemoryLimiter(20, 4), settings), db)
    finally:
        await bot.session.close()
    (call,) = telegram.sent("sendMessage")
    assert int(call.params["chat_id"]) == 8_100_000
    # The wording is messages.py's to choose; the alert's facts and the language are ours.
    text = call.params["text"]
    assert "<b>TON-USDT</b>" in text and "6.0000" in text and "6.0100" in text, text
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "Открыть SimplRefQ"
