"""The mini-app shell as served over HTTP: page, static files, API docs."""

from __future__ import annotations

import asyncio
import gzip
import re

import httpx

from tests.helpers import Server


async def test_shell_renders_with_tabs_and_a_strict_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for tab in ("trade", "points", "signals", "wallet"):
        assert f'id="panel-{tab}"' in html and f'data-tab="{tab}"' in html
    assert 'data-demo="1"' in html and 'hx-ext="ws"' in html
    assert "https://telegram.org/js/telegram-web-app.js" in html
    # Everything else is local: no CDN.
    external = set(re.findall(r'(?:src|href)="(https?://[^"]+)"', html))
    # TradingView's link is the chart library's required credit, not a resource the page loads.
    allowed = {
        "https://telegram.org/js/telegram-web-app.js",
        "https://t.me/SimplRefQBot",
        "https://www.tradingview.com/",
    }
    assert external <= allowed
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self' https://telegram.org" in policy
    assert response.headers["cache-control"] == "no-store"


async def test_static_assets_are_versioned_cached_and_compressed(client: httpx.AsyncClient) -> None:
    html = (await client.get("/")).text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    names = {asset.split("?")[0] for asset in assets}
    assert names == {
        "/static/css/app.css",
        "/static/vendor/htmx.min.js",
        "/static/vendor/htmx-ext-ws.js",
        "/static/js/hub.js",
        "/static/js/app.js",
        "/static/js/points.js",
        "/static/js/settings.js",
        "/static/css/trade.css",
        "/static/js/trade.js",
        "/static/css/signals.css",
        "/static/js/signals.js",
        "/static/css/wallet.css",
        "/static/js/wallet.js",
    }
    for asset in assets:
        assert re.search(r"\?v=[0-9a-f]{12}$", asset), asset
        response = await client.get(asset, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert "max-age=31536000" in response.headers["cache-control"]
    htmx = await client.get("/static/vendor/htmx.min.js", headers={"Accept-Encoding": "gzip"})
    assert htmx.headers["content-encoding"] == "gzip"
    assert b"htmx" in htmx.content and b'version:"2.' in htmx.content
    ws = (await client.get("/static/vendor/htmx-ext-ws.js")).content
    assert b"defineExtension" in ws and b'"ws"' in ws


async def test_the_page_ships_under_60_kb_of_js_and_css_gzipped(client: httpx.AsyncClient) -> None:
    html = (await client.get("/")).text
    total = 0
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+\.(?:js|css)\?v=\w+)"', html):
        total += len(gzip.compress((await client.get(asset)).content))
    assert 0 < total < 60 * 1024
    # The chart library outweighs the rest of the page: it is fetched when the chart first shows.
    (chart,) = re.findall(r'data-chart-lib="(/static/vendor/lightweight-charts\.js\?v=\w+)"', html)
    assert len(gzip.compress((await client.get(chart)).content)) < 70 * 1024
    # So are the Wallet tab's TON Connect UI (on the first "Connect TON wallet") and QR code
    # library (when a deposit address first shows), named by data attributes, not loaded.
    for name in ("tonconnect-ui.js", "qrcode.js"):
        (url,) = re.findall(
            rf'data-(?:ton|qr)-lib="(/static/vendor/{re.escape(name)}\?v=\w+)"', html
        )
        assert (await client.get(url)).status_code == 200


async def test_static_files_stay_inside_static(server: Server) -> None:
    assert (await raw_get(server, "/static/nope.js")).startswith(b"HTTP/1.1 404")
    # Sent byte for byte (an HTTP client would normalise the dots away before sending).
    for path in (
        "/static/../pyproject.toml",
        "/static/%2e%2e/pyproject.toml",
        "/static/..%2fpyproject.toml",
        "/static/css/../../README.md",
    ):
        answer = await raw_get(server, path)
        assert not answer.startswith(b"HTTP/1.1 200"), path
        assert b"[project]" not in answer and b"# SimplRefQ" not in answer


async def raw_get(server: Server, path: str) -> bytes:
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


async def test_api_docs_are_served_without_a_cdn(server: Server, client: httpx.AsyncClient) -> None:
    docs = await client.get("/schema")
    assert docs.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert "cdn." not in docs.text and "unpkg" not in docs.text
