"""HTML mode of the hub: frames become fragments the htmx WebSocket extension swaps in by id.

A frame is rendered once per process and the same fragment goes to every page; only state
topics with a fragment template are offered, and a page that falls behind skips to the newest
state (the state-topic policy of subscriber.py), which is what a ticker should do.

The page's one ``/ws`` socket asks for the same fragments with ``"html": [topics]`` in its
subscribe: each frame of those topics is then followed by ``{"op": "html", ...}`` (HtmlFollow).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from backend.hub import protocol
from backend.hub.topics import Topic, TopicError, parse_topic

# Topic kind -> (template, context from the frame's data).
_FRAGMENTS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "prices": ("fragments/ticker.html", lambda data: {"markets": data.get("markets", {})}),
}
# A page shows a handful of live widgets; more topics than this is not a page.
MAX_HTML_TOPICS = 8
# Rendered fragments kept per process: the newest frame of each topic is what pages ask for.
_CACHE_SIZE = 64

Render = Callable[[str, dict[str, Any]], str]


def html_topics(query: str) -> list[Topic]:
    """The topics a page asked for (``?topics=prices,candles:TON-USDT:1m``)."""
    names = [name for name in query.split(",") if name][:MAX_HTML_TOPICS]
    topics = []
    for name in names:
        topic = parse_topic(name)
        if topic.kind not in _FRAGMENTS or topic.is_private:
            raise TopicError("unknown_topic", f"{name} has no HTML fragment")
        topics.append(topic)
    return topics


class FragmentRenderer:
    """Turns the hub's JSON frames into fragments for one page."""

    _rendered: dict[str, str] = {}  # frame text -> fragment, shared by every page
    _ops: dict[str, str] = {}  # frame text -> its op html frame (/ws), shared likewise

    def __init__(self, render: Render) -> None:
        self._render = render
        self._subscribed: set[str] = set()

    def fragment(self, text: str) -> str | None:
        cached = self._rendered.get(text)
        if cached is not None:
            return cached
        frame = json.loads(text)
        if "op" in frame:
            return self._status(frame)
        kind = frame["topic"].split(":", 1)[0]
        template, context = _FRAGMENTS[kind]
        html = self._render(template, context(frame["data"]))
        if len(self._rendered) >= _CACHE_SIZE:
            self._rendered.clear()
        self._rendered[text] = html
        return html

    def html_op(self, text: str) -> str | None:
        """The ``op: html`` frame that follows data frame ``text`` on ``/ws``, rendered once."""
        cached = self._ops.get(text)
        if cached is not None:
            return cached
        fragment = self.fragment(text)
        if fragment is None:
            return None
        frame = json.loads(text)
        op = protocol.html(frame["topic"], frame["seq"], fragment).decode()
        if len(self._ops) >= _CACHE_SIZE:
            self._ops.clear()
        self._ops[text] = op
        return op

    def _status(self, frame: dict[str, Any]) -> str | None:
        if frame["op"] != "subscribed":
            return None
        # A second "subscribed" for a topic means the hub resynced this page to a snapshot.
        again = frame["topic"] in self._subscribed
        self._subscribed.add(frame["topic"])
        state = "resynced" if again and not frame["recovered"] else "live"
        return self._render("fragments/live_status.html", {"state": state})


class HtmlFollow:
    """Topics of one ``/ws`` connection whose frames are followed by their fragment."""

    def __init__(self, renderer: FragmentRenderer) -> None:
        self._renderer = renderer
        self._prefixes: tuple[str, ...] = ()

    def add(self, topic: Topic) -> None:
        if topic.kind not in _FRAGMENTS or topic.is_private:
            raise TopicError("unknown_topic", f"{topic.name} has no HTML fragment")
        prefix = _frame_prefix(topic.name)
        if prefix not in self._prefixes:
            self._prefixes += (prefix,)

    def discard(self, name: str) -> None:
        self._prefixes = tuple(p for p in self._prefixes if p != _frame_prefix(name))

    def after(self, text: str) -> str | None:
        """The ``op: html`` frame to send after ``text``, if it is a frame of such a topic."""
        # A prefix test, not a parse: every frame of every topic passes through here.
        if not self._prefixes or not text.startswith(self._prefixes):
            return None
        return self._renderer.html_op(text)


def _frame_prefix(topic: str) -> str:
    # Data frames (protocol.encode_frame / frame_parts) all begin with their topic.
    return json.dumps({"topic": topic}, separators=(",", ":"))[:-1] + ","
