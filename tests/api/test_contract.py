"""The OpenAPI document is the contract: schemathesis calls every operation it lists, with
valid and with invalid input, anonymous and signed in as an admin, on SQLite and on
PostgreSQL + Redis, and fails on any 5xx or any answer the document does not describe
(status, content type, body schema).

Each backend gets a server and database of its own: the generated calls grant points and change
roles of whatever user ids they make up, which must not touch other tests' users.  Generation is
derandomized and bounded (``EXAMPLES``), so a run is repeatable and takes a minute or two.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode, checks

from backend.users.models import Role
from tests.helpers import (
    BACKENDS,
    REDIS_PREFIX,
    RunningServer,
    Server,
    grant,
    make_settings,
    signed_in,
    temporary_database,
)

# Per operation and mode: about 40 operations x 2 modes x 2 identities x 2 databases.
EXAMPLES = 10
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module", params=BACKENDS)
def contract_redis(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    """The Redis settings for the PostgreSQL run; None for the embedded default."""
    if request.param == "sqlite":
        return None
    url = request.getfixturevalue("redis_url")
    return {"url": url, "key_prefix": f"{REDIS_PREFIX}-contract"}


@pytest.fixture(scope="module")
async def contract_server(
    contract_redis: dict[str, Any] | None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    tmp = tmp_path_factory.mktemp("contract")
    if contract_redis is None:
        async with RunningServer(make_settings(tmp)) as server:
            yield server
        return
    async with temporary_database() as url:
        settings = make_settings(tmp, database={"url": url}, redis=contract_redis)
        async with RunningServer(settings) as server:
            yield server


def run_operation(
    operation: schemathesis.APIOperation, base_url: str, headers: dict[str, str]
) -> list[str]:
    """Both modes of one operation; the failures, as schemathesis reports them."""
    failures = []
    with requests.Session() as session:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case) -> None:
                case.call_and_validate(
                    base_url=base_url, session=session, headers=headers, checks=CHECKS, timeout=10
                )

            try:
                call()
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing to make invalid: no parameters and no body
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


def load_operations(base_url: str) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json", timeout=10)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("identity", ["anonymous", "admin"])
async def test_every_operation_keeps_the_contract(
    contract_server: Server, identity: str, tmp_path: Path, new_telegram_id: Callable[[], int]
) -> None:
    # Calls block (requests): they run in a thread while this loop serves them.
    operations = await asyncio.to_thread(load_operations, contract_server.url)
    assert len(operations) >= 30, [op.label for op in operations]
    failures: list[str] = []
    async with contract_server.client() as client:
        for operation in operations:
            headers: dict[str, Any] = {}
            if identity == "admin":
                # A fresh admin per operation: one that logs out, revokes its own sessions or
                # loses its role takes only that operation's later examples with it.
                user, headers = await signed_in(client, new_telegram_id())
                await grant(contract_server, user["id"], Role.ADMIN)
            failures += await asyncio.to_thread(
                run_operation, operation, contract_server.url, headers
            )
    assert not failures, "\n\n".join(failures)
