"""The resting side of a book: price levels in a sorted list, a FIFO of orders per level.

Each side keeps its levels in a dict by *key* and the keys in an ascending list, best last:
the key is the price for bids and minus the price for asks, so on both sides the best level is
``keys[-1]``, taking it away is ``list.pop()`` and a new level near the top is a short
``insort`` near the end.  (A heap would make removing a level from the middle, a cancel,
costly; with about a thousand orders there are a few hundred levels, and bisect is C.)

A level is an intrusive doubly linked list of its orders, so an order leaves from anywhere in
O(1) through the book's id index, and matching walks from the head without allocating.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import NamedTuple

from backend.trading.engine.commands import SelfTrade, Side


class OrderInfo(NamedTuple):
    """A resting order as the outside may see it: a copy, not the live record."""

    order_id: int
    owner: int
    side: Side
    price: int
    qty: int
    """The total size, filled included: ``qty - open`` has filled."""
    open: int
    post_only: bool
    stp: SelfTrade
    client_order_id: str | None


class Order:
    """A live order.  ``qty`` is its total size (filled included), ``open`` what is left."""

    __slots__ = (
        "client_order_id",
        "level",
        "next",
        "open",
        "order_id",
        "owner",
        "post_only",
        "prev",
        "price",
        "qty",
        "side",
        "stp",
    )

    def __init__(
        self,
        order_id: int,
        owner: int,
        side: Side,
        price: int,
        qty: int,
        open_qty: int,
        stp: SelfTrade,
        post_only: bool,
        client_order_id: str | None,
    ) -> None:
        self.order_id = order_id
        self.owner = owner
        self.side = side
        self.price = price
        self.qty = qty
        self.open = open_qty
        self.stp = stp
        self.post_only = post_only
        self.client_order_id = client_order_id
        self.prev: Order | None = None
        self.next: Order | None = None
        self.level: Level | None = None

    def info(self) -> OrderInfo:
        return OrderInfo(
            self.order_id,
            self.owner,
            self.side,
            self.price,
            self.qty,
            self.open,
            self.post_only,
            self.stp,
            self.client_order_id,
        )


class Level:
    """The orders at one price, oldest first, and their total open quantity."""

    __slots__ = ("head", "key", "price", "tail", "total")

    def __init__(self, price: int, key: int) -> None:
        self.price = price
        self.key = key
        self.total = 0
        self.head: Order | None = None
        self.tail: Order | None = None


class BookSide:
    """One side's levels.  ``sign`` turns a price into a key: +1 for bids, -1 for asks."""

    __slots__ = ("keys", "levels", "side", "sign")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.sign = 1 if side is Side.BUY else -1
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []

    def add(self, order: Order) -> int:
        """Appends ``order`` at the back of its price's level; returns the level's new total."""
        key = order.price * self.sign
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = Level(order.price, key)
            insort(self.keys, key)
        tail = level.tail
        order.prev = tail
        order.next = None
        if tail is None:
            level.head = order
        else:
            tail.next = order
        level.tail = order
        order.level = level
        total = level.total + order.open
        level.total = total
        return total

    def remove(self, order: Order) -> int:
        """Unlinks ``order`` from its level; returns what is left at that price."""
        level = order.level
        assert level is not None, "only resting orders are removed"
        prev, nxt = order.prev, order.next
        if prev is None:
            level.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            level.tail = prev
        else:
            nxt.prev = prev
        order.prev = order.next = order.level = None
        total = level.total - order.open
        level.total = total
        if level.head is None:
            self.drop(level.key)
        return total

    def drop(self, key: int) -> None:
        """Forgets an empty level.  The best level is the list's last item: the common case."""
        del self.levels[key]
        keys = self.keys
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    def best(self) -> Level | None:
        return self.levels[self.keys[-1]] if self.keys else None

    def depth(self, n: int) -> list[tuple[int, int]]:
        """The best ``n`` levels as (price, total open qty), best first."""
        if n <= 0:
            return []
        levels = self.levels
        return [(levels[key].price, levels[key].total) for key in self.keys[: -n - 1 : -1]]

    def orders(self) -> list[Order]:
        """Every order, best level first, oldest first within a level: priority order."""
        result: list[Order] = []
        for key in reversed(self.keys):
            order = self.levels[key].head
            while order is not None:
                result.append(order)
                order = order.next
        return result
