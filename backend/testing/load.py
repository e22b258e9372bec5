"""Driving a served app under load: wrk's report read back, and many users signed in at once."""

from __future__ import annotations

import asyncio
import re

import httpx


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, the p50/p90/p99 latencies in ms and the non-2xx count of ``wrk --latency``."""

    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        match = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", output, re.M)
        if match:
            figures[f"p{pct}_ms"] = ms(match.group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return figures


async def sign_in_all(base: str, lines: list[str]) -> list[dict[str, object]]:
    """Sign every body in; returns the sign-in answers (user and token)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        gate = asyncio.Semaphore(32)

        async def one(body: str) -> dict[str, object]:
            async with gate:
                response = await client.post(
                    "/api/auth/telegram",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                response.raise_for_status()
                answer: dict[str, object] = response.json()
                return answer

        return await asyncio.gather(*(one(line) for line in lines))
