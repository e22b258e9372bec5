"""Withdrawals through the real server, paid on real chains (anvil as Ethereum and as BNB
Chain, the compiled vault on each), on SQLite and on PostgreSQL + Redis, and across two
instances where only one runs the books.

What must hold over HTTP: a signed quote is debited once and paid once (the wallet receives the
amount less the fee, the owner's socket hears each step); every refusal has its code and status
and debits nothing; a cancelled or rejected withdrawal comes back; only admins approve and
reject, and both are audited; nothing answers without a session; the document lists it all.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import HTTPProvider, Web3
from web3.contract import Contract

from backend.app import MAX_REQUEST_BYTES  # the app-wide body limit: these routes set none
from backend.ledger.assets import ASSETS
from backend.testing.anvil import find_anvil
from backend.trading.service import Trading
from backend.users.models import Role
from tests.chain_helpers import Node, deploy_contract, rpc, running_nodes
from tests.chain_helpers import sign_withdrawal as sign
from tests.helpers import (
    BACKENDS,
    REDIS_PREFIX,
    RunningServer,
    Server,
    audit_entries,
    grant,
    make_settings,
    receive,
    require,
    signed_in,
    subscribe,
    temporary_database,
    ws_url,
)

# Chain id and USDT's decimals: 6 on Ethereum, 18 on BNB Chain.
CHAINS = {"ethereum": (1, 6), "bnb": (56, 18)}
CONFIRMATIONS = 2
# What the faucet tops USDT and ETH up to (FAUCET_LEVELS).
FAUCET_USDT = Decimal(10_000)
FAUCET_ETH = Decimal(3)
# Ethereum's USDT keeps the defaults (fee 1, 10 to 50,000, approval above 10,000).  ETH there has
# a daily limit a test reaches; BNB Chain's USDT waits for an admin above 50.
LIMITS: dict[str, dict[str, dict[str, str]]] = {
    "ethereum": {
        "ETH": {
            "fee": "0.001",
            "minimum": "0.01",
            "maximum": "0.05",
            "daily": "0.06",
            "approval_above": "1",
        }
    },
    "bnb": {
        "USDT": {
            "fee": "1",
            "minimum": "10",
            "maximum": "1000",
            "daily": "100000",
            "approval_above": "50",
        }
    },
}
# Polls with a deadline: a withdrawal pays in a few of the payouts' 0.2-second passes.
WITHIN = 30.0
TON_ADDRESS = "EQD4FPq-PRDieyQKkizFTRtSDyucUIqrj0v_zXJmqaDp6_0t"


@pytest.fixture(autouse=True)
def _needs_anvil() -> None:
    require("anvil", find_anvil() is not None, "run npm ci --prefix contracts/evm")


@pytest.fixture(scope="module")
def anvils() -> Iterator[dict[str, Node]]:
    require("anvil", find_anvil() is not None, "run npm ci --prefix contracts/evm")
    with running_nodes({name: chain_id for name, (chain_id, _) in CHAINS.items()}) as nodes:
        yield nodes


@dataclass
class Chain:
    name: str
    w3: Web3
    url: str
    vault: Contract
    usdt: Contract
    decimals: int
    admin: ChecksumAddress

    def fund_vault(self, whole: int) -> None:
        """Liquidity the operator moved in (minted to the vault: nobody is credited)."""
        call = self.usdt.functions.mint(self.vault.address, whole * 10**self.decimals)
        receipt = self.w3.eth.wait_for_transaction_receipt(call.transact({"from": self.admin}))
        assert receipt["status"] == 1

    def fund_vault_native(self, whole: int) -> None:
        rpc(self.w3, "anvil_setBalance", self.vault.address, hex(whole * 10**18))

    def mine(self, blocks: int = 1) -> None:
        rpc(self.w3, "anvil_mine", hex(blocks))

    def usdt_of(self, holder: str) -> int:
        return int(self.usdt.functions.balanceOf(holder).call())

    def nonce_of(self, holder: str) -> int:
        return int(self.vault.functions.nonces(holder).call())

    def settings(self) -> dict[str, Any]:
        return {
            "chain_id": CHAINS[self.name][0],
            "rpc_url": self.url,
            "vault": self.vault.address,
            "usdt": self.usdt.address,
            "usdt_decimals": self.decimals,
            "confirmations": CONFIRMATIONS,
            "withdrawals": LIMITS.get(self.name, {}),
        }


def deploy(node: Node, name: str, operator: LocalAccount) -> Chain:
    """A vault and a token of their own on the module's node: each server its own."""
    w3 = Web3(HTTPProvider(node.url))
    admin: ChecksumAddress = w3.eth.accounts[0]
    rpc(w3, "anvil_setBalance", operator.address, hex(10**20))

    decimals = CHAINS[name][1]
    vault = deploy_contract(w3, "Vault", admin, admin, operator.address)
    usdt = deploy_contract(w3, "TestUSDT", admin, decimals)
    return Chain(name, w3, node.url, vault, usdt, decimals, admin)


def deploy_all(anvils: dict[str, Node]) -> tuple[dict[str, Chain], dict[str, Any]]:
    """Both chains, one operator for both vaults; and the settings' ``chains`` group."""
    operator: LocalAccount = Account.create()
    chains = {name: deploy(anvils[name], name, operator) for name in CHAINS}
    group = {
        "operator_key": operator.key.hex(),
        "poll_seconds": 0.2,
        "evm": {name: chain.settings() for name, chain in chains.items()},
    }
    return chains, group


def trading_of(server: Server) -> Trading:
    trading: Trading = server.app.state.resources.trading
    return trading


async def elected(*servers: Server) -> tuple[Server, Server | None]:
    """(the instance that runs the books, another) once one does."""
    deadline = time.monotonic() + 20
    while True:
        running = [server for server in servers if trading_of(server).running]
        if running:
            assert len(running) == 1
            others = [server for server in servers if server is not running[0]]
            return running[0], (others[0] if others else None)
        assert time.monotonic() < deadline, "no instance runs the books"
        await asyncio.sleep(0.05)


@dataclass
class World:
    server: Server
    chains: dict[str, Chain]


@pytest.fixture(scope="module", params=BACKENDS)
def world_redis(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    """The Redis settings for the PostgreSQL run (a prefix, so a leader lease, of its own);
    None for the embedded default."""
    if request.param == "sqlite":
        return None
    url = request.getfixturevalue("redis_url")
    return {"url": url, "key_prefix": f"{REDIS_PREFIX}-wd-{uuid.uuid4().hex[:6]}"}


@pytest.fixture(scope="module")
async def world(
    world_redis: dict[str, Any] | None,
    anvils: dict[str, Node],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[World]:
    """One server per backend, paying on both chains (vaults of its own)."""
    chains, group = deploy_all(anvils)
    async with AsyncExitStack() as stack:
        backend: dict[str, Any] = {}
        if world_redis is not None:
            url = await stack.enter_async_context(temporary_database())
            backend = {"database": {"url": url}, "redis": world_redis}
        settings = make_settings(tmp_path_factory.mktemp("withdrawals"), chains=group, **backend)
        server = await stack.enter_async_context(RunningServer(settings))
        await elected(server)
        yield World(server, chains)


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with world.server.client() as http:
        yield http


# --- helpers ----------------------------------------------------------------------------------


Auth = dict[str, str]


async def funded(client: httpx.AsyncClient, telegram_id: int) -> tuple[int, Auth]:
    """A user signed in, with the demo faucet's funds."""
    user, auth = await signed_in(client, telegram_id)
    topped = await client.post("/api/faucet", headers=auth)
    assert topped.status_code == 200, topped.text
    return int(user["id"]), auth


async def available(client: httpx.AsyncClient, auth: Auth, asset: str = "USDT") -> Decimal:
    response = await client.get("/api/balances", headers=auth)
    assert response.status_code == 200, response.text
    found = [b for b in response.json() if b["asset"] == asset]
    return Decimal(found[0]["available"]) if found else Decimal(0)


async def balance_becomes(
    client: httpx.AsyncClient, auth: Auth, expected: Decimal, asset: str = "USDT"
) -> None:
    deadline = time.monotonic() + WITHIN
    while (now := await available(client, auth, asset)) != expected:
        assert time.monotonic() < deadline, f"{asset} balance {now}, expected {expected}"
        await asyncio.sleep(0.1)


async def listed(client: httpx.AsyncClient, auth: Auth) -> list[dict[str, Any]]:
    response = await client.get("/api/withdrawals", headers=auth)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def reaches(
    client: httpx.AsyncClient,
    auth: Auth,
    withdrawal_id: int,
    status: str,
    chain: Chain | None = None,
    until: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> dict[str, Any]:
    """The owner's view of the withdrawal once it has ``status`` (and ``until`` holds); while
    it is sent, a block is mined on ``chain`` each poll for its confirmations."""
    deadline = time.monotonic() + WITHIN
    while True:
        found = next(w for w in await listed(client, auth) if w["id"] == withdrawal_id)
        if found["status"] == status and until(found):
            return found
        assert time.monotonic() < deadline, f"still {found}"
        if found["status"] == "sent" and chain is not None:
            chain.mine()
        await asyncio.sleep(0.1)


def draft(
    wallet: LocalAccount | str, amount: str, chain: str = "ethereum", asset: str = "USDT"
) -> dict[str, Any]:
    address = wallet if isinstance(wallet, str) else wallet.address
    return {"chain": chain, "asset": asset, "amount": amount, "address": address}


async def quoted(client: httpx.AsyncClient, auth: Auth, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/withdrawals/quote", json=body, headers=auth)
    assert response.status_code == 200, response.text
    quote: dict[str, Any] = response.json()
    return quote


async def signed_body(
    client: httpx.AsyncClient, auth: Auth, wallet: LocalAccount, body: dict[str, Any]
) -> dict[str, Any]:
    """The POST body: the quote for ``body``, signed by ``wallet``."""
    quote = await quoted(client, auth, body)
    return {**body, "deadline": quote["deadline"], "signature": sign(wallet, quote["typed_data"])}


async def withdraw(
    client: httpx.AsyncClient, auth: Auth, wallet: LocalAccount, body: dict[str, Any]
) -> dict[str, Any]:
    made = await client.post(
        "/api/withdrawals", json=await signed_body(client, auth, wallet, body), headers=auth
    )
    assert made.status_code == 201, made.text
    row: dict[str, Any] = made.json()
    return row


def refused(response: httpx.Response, status: int, code: str) -> None:
    answer = (response.status_code, response.json().get("error"))
    assert answer == (status, code), response.text


def entries_for(entries: list[Any], withdrawal_id: int) -> list[Any]:
    return [e for e in entries if e.details.get("withdrawal_id") == withdrawal_id]


# --- 1. end to end ----------------------------------------------------------------------------


async def test_a_signed_quote_is_debited_paid_and_announced(
    world: World, client: httpx.AsyncClient, new_telegram_id: Callable[[], int]
) -> None:
    eth = world.chains["ethereum"]
    user_id, auth = await funded(client, new_telegram_id())
    wallet: LocalAccount = Account.create()
    eth.fund_vault(1_000)

    async with websockets.connect(ws_url(world.server), additional_headers=auth) as ws:
        await subscribe(ws, f"user:{user_id}")

        body = draft(wallet.address.lower(), "30")  # all lower case: taken as given
        quote = await quoted(client, auth, body)
        assert {k: quote[k] for k in ("chain", "asset", "amount", "fee", "receive")} == {
            "chain": "ethereum",
            "asset": "USDT",
            "amount": "30",
            "fee": "1",
            "receive": "29",
        }
        assert (quote["address"], quote["needs_approval"], quote["nonce"]) == (
            wallet.address,
            False,
            0,
        )
        assert abs(quote["deadline"] - (time.time() + 86_400)) < 60
        typed = quote["typed_data"]
        assert typed["domain"]["chainId"] == 1
        assert typed["domain"]["verifyingContract"] == eth.vault.address
        assert typed["message"] == {
            "user": wallet.address,
            "token": eth.usdt.address,
            "amount": str(29 * 10**6),  # what the vault pays, in the token's units
            "nonce": "0",
            "deadline": str(quote["deadline"]),
        }
        assert await available(client, auth) == FAUCET_USDT  # a quote debits nothing

        signature = sign(wallet, typed)
        request = {**body, "deadline": quote["deadline"], "signature": signature}
        made = await client.post("/api/withdrawals", json=request, headers=auth)
        assert made.status_code == 201, made.text
        row = made.json()
        assert {k: row[k] for k in ("status", "amount", "fee", "receive", "address")} == {
            "status": "queued",
            "amount": "30",
            "fee": "1",
            "receive": "29",
            "address": wallet.address,
        }
        assert row["refunded"] is False and row["user_id"] is None
        assert (row["confirmations"], row["required"]) == (0, CONFIRMATIONS)
        assert await available(client, auth) == FAUCET_USDT - 30  # debited at once
        assert [w["id"] for w in await listed(client, auth)] == [row["id"]]

        paid = await reaches(client, auth, row["id"], "confirmed", eth)
        assert paid["tx_hash"] and paid["block_number"] and paid["confirmed_at"]
        assert paid["confirmations"] >= paid["required"] == CONFIRMATIONS
        assert eth.usdt_of(wallet.address) == 29 * 10**6
        assert eth.nonce_of(wallet.address) == 1
        assert await available(client, auth) == FAUCET_USDT - 30  # debited once

        statuses: list[str] = []
        while "confirmed" not in statuses:
            frame = await receive(ws, within=WITHIN)
            data = frame.get("data") or {}
            if data.get("type") == "withdrawal":
                assert data["id"] == row["id"] and data["amount"] == "30"
                statuses.append(data["status"])
        assert statuses == ["queued", "sent", "confirmed"]

    entries = entries_for(await audit_entries(world.server, "withdrawal.request"), row["id"])
    assert [(e.actor_id, e.details["amount"], e.details["address"]) for e in entries] == [
        (user_id, "30", wallet.address)
    ]
    # Paid: not cancellable; the same signature again: its nonce is used.
    late = await client.delete(f"/api/withdrawals/{row['id']}", headers=auth)
    refused(late, 409, "withdrawal_not_cancellable")
    again = await client.post("/api/withdrawals", json=request, headers=auth)
    refused(again, 400, "authorization_invalid")
    # Paid, the wallet is free again, with the vault's next nonce.
    assert (await quoted(client, auth, draft(wallet, "20")))["nonce"] == 1
    assert await available(client, auth) == FAUCET_USDT - 30
    assert eth.usdt_of(wallet.address) == 29 * 10**6


async def test_the_native_coin_is_paid_in_wei(
    world: World, client: httpx.AsyncClient, new_telegram_id: Callable[[], int]
) -> None:
    bnb = world.chains["bnb"]
    bnb.fund_vault_native(5)
    _, auth = await funded(client, new_telegram_id())
    wallet: LocalAccount = Account.create()
    body = draft(wallet, "0.5", chain="bnb", asset="BNB")
    quote = await quoted(client, auth, body)
    assert (quote["fee"], quote["receive"]) == ("0.001", "0.499")
    assert quote["typed_data"]["message"]["token"] == "0x" + "00" * 20
    assert quote["typed_data"]["message"]["amount"] == str(499 * 10**15)
    made = await withdraw(client, auth, wallet, body)
    assert await available(client, auth, "BNB") == Decimal(15) - Decimal("0.5")
    await reaches(client, auth, made["id"], "confirmed", bnb)
    assert bnb.w3.eth.get_balance(wallet.address) == 499 * 10**15


# --- 2. refusals: nothing is debited ----------------------------------------------------------

PAYEE: LocalAccount = Account.from_key(b"\x07" * 32)
_letter = next(i for i, c in enumerate(PAYEE.address[2:], 2) if c.isalpha())
# The payee's address with one letter's case swapped: its EIP-55 checksum breaks.
TYPO = PAYEE.address[:_letter] + PAYEE.address[_letter].swapcase() + PAYEE.address[_letter + 1 :]

DRAFT_REFUSALS: list[tuple[dict[str, Any], int, str]] = [
    ({"chain": "solana"}, 400, "unknown_chain"),
    ({"chain": "Ethereum"}, 400, "unknown_chain"),
    ({"asset": "DOGE"}, 400, "unknown_asset"),
    ({"asset": "BNB"}, 400, "unknown_asset"),  # BNB Chain's coin, not Ethereum's
    ({"asset": "usdt"}, 400, "unknown_asset"),
    ({"address": TYPO}, 400, "invalid_address"),
    ({"address": TON_ADDRESS}, 400, "invalid_address"),
    ({"address": PAYEE.address[2:]}, 400, "invalid_address"),
    ({"address": PAYEE.address[:-1]}, 400, "invalid_address"),
    ({"address": "0x" + "g" * 40}, 400, "invalid_address"),
    ({"amount": "20.0000001"}, 400, "invalid_amount"),  # USDT has 6 places
    ({"amount": "-5"}, 400, "invalid_amount"),
    ({"amount": "0"}, 400, "invalid_amount"),
    ({"amount": "NaN"}, 400, "invalid_amount"),
    ({"amount": "Infinity"}, 400, "invalid_amount"),
    ({"amount": "twenty"}, 400, "invalid_amount"),
    # Plain decimals only, as every other amount the API takes (backend/market/grid.py).
    ({"amount": "1e3"}, 400, "invalid_amount"),
    ({"amount": "1E+3"}, 400, "invalid_amount"),
    ({"amount": "1_000"}, 400, "invalid_amount"),
    ({"amount": "1e999999999"}, 400, "invalid_amount"),
    ({"amount": "9" * 40}, 400, "invalid_amount"),
    ({"amount": "9.99"}, 400, "below_minimum"),
    ({"amount": "50000.01"}, 400, "above_maximum"),
    ({"asset": "ETH", "amount": "0.05001"}, 400, "above_maximum"),
]


@pytest.fixture
async def payer(client: httpx.AsyncClient, new_telegram_id: Callable[[], int]) -> tuple[int, Auth]:
    return await funded(client, new_telegram_id())


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    DRAFT_REFUSALS,
    ids=[f"{code}:{list(fields.values())[-1]}"[:40] for fields, _, code in DRAFT_REFUSALS],
)
async def test_a_bad_draft_gets_the_same_code_from_both_routes_and_debits_nothing(
    client: httpx.AsyncClient,
    payer: tuple[int, Auth],
    fields: dict[str, Any],
    status: int,
    code: str,
) -> None:
    _, auth = payer
    body = {**draft(PAYEE, "20"), **fields}
    refused(await client.post("/api/withdrawals/quote", json=body, headers=auth), status, code)
    signed = {**body, "deadline": int(time.time()) + 3600, "signature": "0x" + "ab" * 65}
    refused(await client.post("/api/withdrawals", json=signed, headers=auth), status, code)
    assert await available(client, auth) == FAUCET_USDT
    assert await available(client, auth, "ETH") == FAUCET_ETH
    assert await listed(client, auth) == []


BODY_REFUSALS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("unknown field", lambda b: {**b, "memo": "hi"}),
    ("missing field", lambda b: {k: v for k, v in b.items() if k != "address"}),
    ("amount as a number", lambda b: {**b, "amount": 20}),
    ("chain as null", lambda b: {**b, "chain": None}),
    ("empty amount", lambda b: {**b, "amount": ""}),
    ("amount too long", lambda b: {**b, "amount": "1" * 41}),
    ("address too long", lambda b: {**b, "address": "0x" + "a" * 120}),
    ("a list", lambda b: [b]),
]


@pytest.mark.parametrize(("case", "change"), BODY_REFUSALS, ids=[c for c, _ in BODY_REFUSALS])
async def test_a_malformed_body_is_a_400_on_both_routes(
    client: httpx.AsyncClient,
    payer: tuple[int, Auth],
    case: str,
    change: Callable[[dict[str, Any]], Any],
) -> None:
    _, auth = payer
    body = draft(PAYEE, "20")
    signed = {**body, "deadline": int(time.time()) + 3600, "signature": "0x" + "ab" * 65}
    for path, base in (("/api/withdrawals/quote", body), ("/api/withdrawals", signed)):
        refused(await client.post(path, json=change(base), headers=auth), 400, "bad_request")
    assert await listed(client, auth) == []
    assert await available(client, auth) == FAUCET_USDT


async def test_the_signed_fields_are_typed_strictly_and_the_body_is_bounded(
    client: httpx.AsyncClient, payer: tuple[int, Auth]
) -> None:
    _, auth = payer
    signed = {**draft(PAYEE, "20"), "deadline": int(time.time()) + 3600, "signature": "0x00"}
    for field, value in (
        ("deadline", str(signed["deadline"])),
        ("deadline", -1),
        ("deadline", 2**41),
        ("deadline", 1.5),
        ("signature", ""),
        ("signature", "0x" + "ab" * 100),
        ("signature", 7),
    ):
        response = await client.post(
            "/api/withdrawals", json={**signed, field: value}, headers=auth
        )
        refused(response, 400, "bad_request")
    headers = {**auth, "Content-Type": "application/json"}
    for path in ("/api/withdrawals/quote", "/api/withdrawals"):
        broken = await client.post(path, content=b'{"chain": ', headers=headers)
        refused(broken, 400, "bad_request")
        huge = b'{"chain": "' + b"x" * MAX_REQUEST_BYTES + b'"}'
        refused(await client.post(path, content=huge, headers=headers), 413, "too_large")
    assert await listed(client, auth) == []


async def test_authorisations_that_do_not_match_are_refused(
    world: World, client: httpx.AsyncClient, payer: tuple[int, Auth]
) -> None:
    _, auth = payer
    wallet: LocalAccount = Account.create()
    # Above BNB Chain's approval threshold: the one taken stays in flight, whatever the
    # payouts' pace, until an admin acts.
    body = draft(wallet, "60", chain="bnb")
    quote = await quoted(client, auth, body)
    assert quote["typed_data"]["domain"]["chainId"] == 56
    eth_quote = await quoted(client, auth, draft(wallet, "60"))

    async def attempt(deadline: int, signature: str) -> httpx.Response:
        signed = {**body, "deadline": deadline, "signature": signature}
        return await client.post("/api/withdrawals", json=signed, headers=auth)

    someone_else: LocalAccount = Account.create()
    cases = [
        (quote["deadline"], sign(someone_else, quote["typed_data"]), 400, "authorization_invalid"),
        # Signed for Ethereum's vault (its chain id, its address): nothing on BNB Chain.
        (
            eth_quote["deadline"],
            sign(wallet, eth_quote["typed_data"]),
            400,
            "authorization_invalid",
        ),
        (quote["deadline"], "0x1234", 400, "authorization_invalid"),
        (quote["deadline"], "not hex at all", 400, "authorization_invalid"),
        (quote["deadline"], "0x" + "ff" * 65, 400, "authorization_invalid"),
        # Deadlines too near (the operator could not send it in time) and too far.
        (int(time.time()) + 10, sign(wallet, quote["typed_data"]), 409, "authorization_stale"),
        (int(time.time()) - 10, sign(wallet, quote["typed_data"]), 409, "authorization_stale"),
        (
            int(time.time()) + 30 * 86_400,
            sign(wallet, quote["typed_data"]),
            409,
            "authorization_stale",
        ),
    ]
    # A quote signed, then its deadline changed: it no longer recovers to the wallet.
    cases.append(
        (quote["deadline"] + 1, sign(wallet, quote["typed_data"]), 400, "authorization_invalid")
    )
    for deadline, signature, status, code in cases:
        refused(await attempt(deadline, signature), status, code)
    # The same signature for another amount than it was signed for.
    other_amount = {
        **draft(wallet, "61", chain="bnb"),
        "deadline": quote["deadline"],
        "signature": sign(wallet, quote["typed_data"]),
    }
    refused(
        await client.post("/api/withdrawals", json=other_amount, headers=auth),
        400,
        "authorization_invalid",
    )
    assert await available(client, auth) == FAUCET_USDT
    assert await listed(client, auth) == []

    # Signed right: taken; while it is in flight the wallet gets no second one.
    second_quote = await quoted(client, auth, draft(wallet, "15", chain="bnb"))
    made = await attempt(quote["deadline"], sign(wallet, quote["typed_data"]))
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "pending_approval"
    refused(
        await attempt(quote["deadline"], sign(wallet, quote["typed_data"])),
        409,
        "withdrawal_in_flight",
    )
    second = {
        **draft(wallet, "15", chain="bnb"),
        "deadline": second_quote["deadline"],
        "signature": sign(wallet, second_quote["typed_data"]),
    }
    in_flight = await client.post("/api/withdrawals", json=second, headers=auth)
    refused(in_flight, 409, "withdrawal_in_flight")
    quote_again = await client.post("/api/withdrawals/quote", json=body, headers=auth)
    refused(quote_again, 409, "withdrawal_in_flight")
    assert await available(client, auth) == FAUCET_USDT - 60
    assert [w["id"] for w in await listed(client, auth)] == [made.json()["id"]]
    # Another wallet of the same user is not held up, nor the same wallet on another chain.
    assert (await quoted(client, auth, draft(Account.create(), "15", chain="bnb")))["nonce"] == 0
    assert (await quoted(client, auth, draft(wallet, "15")))["nonce"] == 0


async def test_more_than_the_balance_is_a_409_and_leaves_no_trace(
    client: httpx.AsyncClient, payer: tuple[int, Auth]
) -> None:
    _, auth = payer
    wallet: LocalAccount = Account.create()
    body = draft(wallet, "10000.01")
    response = await client.post(
        "/api/withdrawals", json=await signed_body(client, auth, wallet, body), headers=auth
    )
    refused(response, 409, "insufficient_funds")
    assert await available(client, auth) == FAUCET_USDT
    assert await listed(client, auth) == []
    # The wallet's nonce slot is free again: the same wallet may withdraw what there is.
    quote = await quoted(client, auth, draft(wallet, "20"))
    assert quote["nonce"] == 0


async def test_the_daily_limit_counts_every_withdrawal_of_the_day(
    world: World, client: httpx.AsyncClient, payer: tuple[int, Auth]
) -> None:
    """ETH on Ethereum: at most 0.06 a day here; two of 0.04 to two wallets are one too many."""
    _, auth = payer
    world.chains["ethereum"].fund_vault_native(10)
    first, second = Account.create(), Account.create()
    # Quoted and signed while the day's total was still 0.
    waiting = await signed_body(client, auth, second, draft(second, "0.04", asset="ETH"))
    made = await withdraw(client, auth, first, draft(first, "0.04", asset="ETH"))
    assert made["status"] == "queued"
    refused(await client.post("/api/withdrawals", json=waiting, headers=auth), 409, "daily_limit")
    refused(
        await client.post(
            "/api/withdrawals/quote", json=draft(second, "0.04", asset="ETH"), headers=auth
        ),
        409,
        "daily_limit",
    )
    assert (await quoted(client, auth, draft(second, "0.02", asset="ETH")))["amount"] == "0.02"
    assert await available(client, auth, "ETH") == FAUCET_ETH - Decimal("0.04")
    assert [w["id"] for w in await listed(client, auth)] == [made["id"]]


# --- 3. cancelling ----------------------------------------------------------------------------


async def test_cancel_returns_the_amount_once_and_only_for_the_owner(
    world: World, client: httpx.AsyncClient, new_telegram_id: Callable[[], int]
) -> None:
    user_id, auth = await funded(client, new_telegram_id())
    _, stranger = await signed_in(client, new_telegram_id())
    wallet: LocalAccount = Account.create()
    # Above BNB Chain's approval threshold: it waits, so nothing sends it meanwhile.
    made = await withdraw(client, auth, wallet, draft(wallet, "60", chain="bnb"))
    assert made["status"] == "pending_approval"
    assert await available(client, auth) == FAUCET_USDT - 60
    path = f"/api/withdrawals/{made['id']}"

    refused(await client.delete(path, headers=stranger), 404, "withdrawal_not_found")
    refused(
        await client.delete("/api/withdrawals/2147483647", headers=auth),
        404,
        "withdrawal_not_found",
    )
    for bad in ("/api/withdrawals/abc", "/api/withdrawals/99999999999", "/api/withdrawals/-1"):
        assert (await client.delete(bad, headers=auth)).status_code in (400, 404, 405)
    cancelled = await client.delete(path, headers=auth)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["id"] == made["id"]
    refused(await client.delete(path, headers=auth), 409, "withdrawal_not_cancellable")

    await balance_becomes(client, auth, FAUCET_USDT)
    back = await reaches(client, auth, made["id"], "cancelled", until=lambda w: w["refunded"])
    assert back["tx_hash"] is None
    await asyncio.sleep(0.5)  # a few more payouts passes: returned once
    assert await available(client, auth) == FAUCET_USDT
    entries = entries_for(await audit_entries(world.server, "withdrawal.cancel"), made["id"])
    assert [(e.actor_id, e.details["amount"]) for e in entries] == [(user_id, "60")]
    # The wallet's nonce was never used: its next quote takes it again.
    assert (await quoted(client, auth, draft(wallet, "20", chain="bnb")))["nonce"] == 0


# --- 4. admins --------------------------------------------------------------------------------


async def test_admins_approve_and_reject_and_nobody_else_may(
    world: World, client: httpx.AsyncClient, new_telegram_id: Callable[[], int]
) -> None:
    bnb = world.chains["bnb"]
    bnb.fund_vault(1_000)
    user_id, auth = await funded(client, new_telegram_id())
    admin, as_admin = await signed_in(client, new_telegram_id())
    moderator, as_moderator = await signed_in(client, new_telegram_id())
    await grant(world.server, admin["id"], Role.ADMIN)
    await grant(world.server, moderator["id"], Role.MODERATOR)
    paid_to, returned_to = Account.create(), Account.create()
    quote = await quoted(client, auth, draft(paid_to, "60", chain="bnb"))
    assert quote["needs_approval"] is True
    to_pay = await withdraw(client, auth, paid_to, draft(paid_to, "60", chain="bnb"))
    to_return = await withdraw(client, auth, returned_to, draft(returned_to, "70", chain="bnb"))
    assert {to_pay["status"], to_return["status"]} == {"pending_approval"}
    assert await available(client, auth) == FAUCET_USDT - 130
    ids = [to_pay["id"], to_return["id"]]
    listing = "/api/admin/withdrawals"

    for headers in (auth, as_moderator):
        refused(await client.get(listing, headers=headers), 403, "role_required")
        for withdrawal_id in ids:
            for action in ("approve", "reject"):
                answer = await client.post(f"{listing}/{withdrawal_id}/{action}", headers=headers)
                refused(answer, 403, "role_required")
    assert {w["status"] for w in await listed(client, auth)} == {"pending_approval"}

    waiting = await client.get(listing, headers=as_admin)
    assert waiting.status_code == 200, waiting.text
    ours = [w for w in waiting.json() if w["id"] in ids]
    assert [(w["id"], w["user_id"], w["amount"]) for w in ours] == [
        (to_pay["id"], user_id, "60"),
        (to_return["id"], user_id, "70"),
    ]

    approved = await client.post(f"{listing}/{to_pay['id']}/approve", headers=as_admin)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "queued" and approved.json()["user_id"] == user_id
    rejected = await client.post(f"{listing}/{to_return['id']}/reject", headers=as_admin)
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    for withdrawal_id, action in (
        (to_pay["id"], "approve"),
        (to_pay["id"], "reject"),
        (to_return["id"], "approve"),
        (to_return["id"], "reject"),
    ):
        again = await client.post(f"{listing}/{withdrawal_id}/{action}", headers=as_admin)
        refused(again, 409, "withdrawal_not_cancellable")
    for action in ("approve", "reject"):
        missing = await client.post(f"{listing}/2147483647/{action}", headers=as_admin)
        refused(missing, 404, "withdrawal_not_found")
    assert [w for w in (await client.get(listing, headers=as_admin)).json() if w["id"] in ids] == []

    paid = await reaches(client, auth, to_pay["id"], "confirmed", bnb)
    assert paid["tx_hash"]
    assert bnb.usdt_of(paid_to.address) == 59 * 10**18
    await reaches(client, auth, to_return["id"], "rejected", until=lambda w: w["refunded"])
    await balance_becomes(client, auth, FAUCET_USDT - 60)
    assert bnb.usdt_of(returned_to.address) == 0

    approvals = entries_for(await audit_entries(world.server, "withdrawal.approve"), ids[0])
    rejections = entries_for(await audit_entries(world.server, "withdrawal.reject"), ids[1])
    assert [(e.actor_id, e.target, e.details["amount"]) for e in approvals] == [
        (admin["id"], f"user:{user_id}", "60")
    ]
    assert [(e.actor_id, e.target, e.details["amount"]) for e in rejections] == [
        (admin["id"], f"user:{user_id}", "70")
    ]


# --- 5. without a session; a chain with no vault, or whose node does not answer ------------

SOME_CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


async def test_every_route_wants_a_session_and_a_chain_that_cannot_pay_says_so(
    tmp_path: Path, new_telegram_id: Callable[[], int]
) -> None:
    """Ethereum as the defaults leave it (no node, no vault); BNB Chain with a vault and an
    operator key but a node that refuses connections (a port bound here and never listened
    on)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
        bnb = {"rpc_url": dead, "vault": SOME_CONTRACT, "usdt": SOME_CONTRACT}
        group = {"evm": {"bnb": bnb}, "operator_key": "0x" + "11" * 32}
        settings = make_settings(tmp_path, chains=group)
        async with RunningServer(settings) as server, server.client() as client:
            body = draft(PAYEE, "20")
            signed = {**body, "deadline": int(time.time()) + 3600, "signature": "0x" + "ab" * 65}
            for method, path, payload in (
                ("GET", "/api/withdrawals", None),
                ("POST", "/api/withdrawals", signed),
                ("POST", "/api/withdrawals/quote", body),
                ("DELETE", "/api/withdrawals/1", None),
                ("GET", "/api/admin/withdrawals", None),
                ("POST", "/api/admin/withdrawals/1/approve", None),
                ("POST", "/api/admin/withdrawals/1/reject", None),
            ):
                answer = await client.request(method, path, json=payload)
                refused(answer, 401, "unauthorized")

            _, auth = await funded(client, new_telegram_id())
            for path, payload in (("/api/withdrawals/quote", body), ("/api/withdrawals", signed)):
                answer = await client.post(path, json=payload, headers=auth)
                refused(answer, 409, "withdrawals_unavailable")
                answer = await client.post(path, json={**payload, "chain": "bnb"}, headers=auth)
                refused(answer, 503, "chain_unavailable")
            assert await listed(client, auth) == []
            assert await available(client, auth) == FAUCET_USDT


# --- 6. two instances, one running the books --------------------------------------------------


async def test_a_withdrawal_through_the_instance_without_the_books(
    anvils: dict[str, Node],
    redis_url: str,
    tmp_path: Path,
    new_telegram_id: Callable[[], int],
) -> None:
    chains, group = deploy_all(anvils)
    eth = chains["ethereum"]
    eth.fund_vault(1_000)
    prefix = f"{REDIS_PREFIX}-wdbus-{uuid.uuid4().hex[:6]}"
    async with temporary_database() as database:
        settings = make_settings(
            tmp_path,
            database={"url": database},
            redis={"url": redis_url, "key_prefix": prefix},
            chains=group,
        )
        async with RunningServer(settings) as one, RunningServer(settings) as two:
            leader, follower = await elected(one, two)
            assert follower is not None and not trading_of(follower).running
            async with follower.client() as client:
                user_id, auth = await funded(client, new_telegram_id())
                wallet: LocalAccount = Account.create()
                made = await withdraw(client, auth, wallet, draft(wallet, "30"))
                assert made["status"] == "queued"
                assert await available(client, auth) == FAUCET_USDT - 30
                # The debit went through the books' writers: their funds mirror has it.
                mirror = trading_of(leader).available(user_id, "USDT")
                assert mirror is None or mirror == ASSETS["USDT"].to_units(FAUCET_USDT - 30)
                paid = await reaches(client, auth, made["id"], "confirmed", eth)
                assert paid["tx_hash"]
                assert eth.usdt_of(wallet.address) == 29 * 10**6

                other: LocalAccount = Account.create()
                too_much = await signed_body(client, auth, other, draft(other, "9970.01"))
                answer = await client.post("/api/withdrawals", json=too_much, headers=auth)
                refused(answer, 409, "insufficient_funds")
                assert [w["id"] for w in await listed(client, auth)] == [made["id"]]
                assert await available(client, auth) == FAUCET_USDT - 30
                # Exactly what is left goes through.
                rest = await withdraw(client, auth, other, draft(other, "9970"))
                assert rest["status"] == "queued"
                assert await available(client, auth) == 0


# --- 7. the document --------------------------------------------------------------------------


async def test_the_openapi_document_lists_the_routes_and_their_refusals(
    world: World, client: httpx.AsyncClient
) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    paths = document["paths"]
    expected = {
        ("/api/withdrawals/quote", "post"): ("200", {"400", "401", "409", "413", "503"}),
        ("/api/withdrawals", "post"): ("201", {"400", "401", "409", "413", "503"}),
        ("/api/withdrawals", "get"): ("200", {"401"}),
        ("/api/withdrawals/{withdrawal_id}", "delete"): ("200", {"401", "404", "409"}),
        ("/api/admin/withdrawals", "get"): ("200", {"401", "403"}),
        ("/api/admin/withdrawals/{withdrawal_id}/approve", "post"): (
            "200",
            {"401", "403", "404", "409"},
        ),
        ("/api/admin/withdrawals/{withdrawal_id}/reject", "post"): (
            "200",
            {"401", "403", "404", "409"},
        ),
    }
    for (path, method), (ok, refusals) in expected.items():
        operation = paths[path][method]
        responses = operation["responses"]
        assert ok in responses, (path, method, sorted(responses))
        assert refusals <= set(responses), (path, method, sorted(responses))
        for status in refusals:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)


async def test_requests_sent_at_once_are_taken_once_and_within_the_limits(
    world: World, client: httpx.AsyncClient, payer: tuple[int, Auth]
) -> None:
    _, auth = payer
    world.chains["ethereum"].fund_vault_native(10)
    wallet: LocalAccount = Account.create()
    same = await signed_body(client, auth, wallet, draft(wallet, "25"))
    answers = await asyncio.gather(
        *(client.post("/api/withdrawals", json=same, headers=auth) for _ in range(5))
    )
    codes = sorted((a.status_code, a.json().get("error")) for a in answers)
    assert codes == [(201, None)] + [(409, "withdrawal_in_flight")] * 4, codes
    assert await available(client, auth) == FAUCET_USDT - 25

    # ETH on Ethereum: 0.06 a day.  Four of 0.04 to four wallets, each signed first and all
    # sent at once: one fits the day, the others do not.
    wallets = [Account.create() for _ in range(4)]
    bodies = [await signed_body(client, auth, w, draft(w, "0.04", asset="ETH")) for w in wallets]
    answers = await asyncio.gather(
        *(client.post("/api/withdrawals", json=body, headers=auth) for body in bodies)
    )
    codes = sorted((a.status_code, a.json().get("error")) for a in answers)
    assert codes == [(201, None)] + [(409, "daily_limit")] * 3, codes
    assert await available(client, auth, "ETH") == FAUCET_ETH - Decimal("0.04")
