"""Sign-In with Ethereum for contract wallets (EIP-1271), through the real server and a real
chain: anvil as Ethereum (chain id 1) with the compiled TestSmartWallet deployed on it, on SQLite
and on PostgreSQL + Redis.

The server reaches anvil through a relay that notes each JSON-RPC method asked and can be taken
down, so the tests see when the node is asked and what happens when it does not answer.

What must hold: a contract wallet links (and signs in) with its owner's signature; another key's
signature, a malformed one the wallet reverts on, and a wallet that answers anything but the
magic value are refused; an account's own signature never asks the node, and a stranger's
signature on an account with no code never calls ``isValidSignature``; a chain with no node
refuses as before; a node that is down answers 503 ``siwe_unverifiable`` and spends nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import HTTPProvider, Web3

from backend.chains.rpc import ERC1271_MAGIC
from backend.testing.anvil import Anvil, find_anvil, start_anvil
from tests.chain_helpers import NodeRelay
from tests.helpers import RunningServer, Server, make_settings, require, signed_in, with_backend
from tests.wallet_helpers import EthWallet, siwe_text

ARTIFACT = Path(__file__).resolve().parents[2] / "contracts/evm/artifacts/TestSmartWallet.json"
# What a wallet built wrong answers for a valid signature: not EIP-1271's magic value.
WRONG_ANSWER = bytes.fromhex("deadbeef")


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    require("anvil", find_anvil() is not None, "run npm ci --prefix contracts/evm")
    node = start_anvil(1)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def relay(anvil: Anvil) -> Iterator[NodeRelay]:
    node = NodeRelay(anvil.url)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
async def server(
    backend: dict[str, Any], relay: NodeRelay, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    # Ethereum has a node; BNB Chain (56), also a chain a SIWE message may name, has none.
    chains = {"evm": {"ethereum": {"chain_id": 1, "rpc_url": relay.url}}}
    settings = make_settings(tmp_path_factory.mktemp("app"), **with_backend(backend, chains=chains))
    async with RunningServer(settings) as running:
        yield running


@pytest.fixture
async def client(server: Server, relay: NodeRelay) -> AsyncIterator[httpx.AsyncClient]:
    relay.methods.clear()
    async with server.client() as http:
        yield http


def deploy(anvil: Anvil, owner: EthWallet, answer: bytes = ERC1271_MAGIC) -> str:
    """A TestSmartWallet owned by ``owner``'s key, answering ``answer`` for a valid signature."""
    w3 = Web3(HTTPProvider(anvil.url))
    spec = json.loads(ARTIFACT.read_text())
    factory = w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
    sent = factory.constructor(owner.address, answer).transact({"from": w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(sent)
    assert receipt["contractAddress"] is not None
    return str(receipt["contractAddress"])


async def siwe_proof(
    client: httpx.AsyncClient, address: str, signer: EthWallet, chain_id: int = 1
) -> dict[str, Any]:
    """A link or sign-in body for ``address``, signed by ``signer``'s key."""
    answer = await client.post("/api/wallets/challenge", json={"kind": "siwe"})
    assert answer.status_code == 201, answer.text
    text = siwe_text(address, answer.json()["challenge"], datetime.now(UTC), chain_id=chain_id)
    return {"kind": "siwe", "address": address, "message": text, "signature": signer.sign(text)}


async def refused(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]
) -> tuple[int, str]:
    answer = await client.post("/api/wallets/link", json=body, headers=auth)
    assert (await client.get("/api/wallets", headers=auth)).json() == []
    return answer.status_code, answer.json()["error"]


async def test_a_contract_wallet_links_and_signs_in_with_its_owners_signature(
    client: httpx.AsyncClient, anvil: Anvil, relay: NodeRelay, telegram_id: int
) -> None:
    user, auth = await signed_in(client, telegram_id)
    owner = EthWallet()
    wallet = deploy(anvil, owner)
    linked = await client.post(
        "/api/wallets/link", json=await siwe_proof(client, wallet, owner), headers=auth
    )
    assert linked.status_code == 201, linked.text
    # Bound to the chain that vouched for it (CAIP-10): the same address on another chain may
    # be someone else's contract.
    assert (linked.json()["kind"], linked.json()["address"]) == ("siwe", f"eip155:1:{wallet}")
    assert relay.methods == ["eth_getCode", "eth_call"]
    signed = await client.post("/api/auth/wallet", json=await siwe_proof(client, wallet, owner))
    assert signed.status_code == 200, signed.text
    assert signed.json()["user"]["id"] == user["id"]
    # The owner's key is not the wallet: the owner's own address is not linked by it.
    mine = [w["address"] for w in (await client.get("/api/wallets", headers=auth)).json()]
    assert mine == [f"eip155:1:{wallet}"]


async def test_what_the_contract_does_not_vouch_for_is_refused(
    client: httpx.AsyncClient, anvil: Anvil, relay: NodeRelay, telegram_id: int
) -> None:
    _, auth = await signed_in(client, telegram_id)
    owner = EthWallet()
    wallet, wrong = deploy(anvil, owner), deploy(anvil, owner, WRONG_ANSWER)
    stranger = await siwe_proof(client, wallet, EthWallet())
    assert await refused(client, auth, stranger) == (401, "siwe_bad_signature")
    # ECDSA.recover reverts on it: the contract's no, not a node failure.
    malformed = {**await siwe_proof(client, wallet, owner), "signature": "0x" + "00" * 65}
    assert await refused(client, auth, malformed) == (401, "siwe_bad_signature")
    answers_wrong = await siwe_proof(client, wrong, owner)
    assert await refused(client, auth, answers_wrong) == (401, "siwe_bad_signature")
    assert relay.methods == ["eth_getCode", "eth_call"] * 3


async def test_an_accounts_own_signature_never_asks_the_node(
    client: httpx.AsyncClient, relay: NodeRelay, telegram_id: int
) -> None:
    _, auth = await signed_in(client, telegram_id)
    account = EthWallet()
    forged = await siwe_proof(client, account.address, EthWallet())
    assert await refused(client, auth, forged) == (401, "siwe_bad_signature")
    # No code at the address: no contract to ask isValidSignature of.
    assert relay.methods == ["eth_getCode"]
    relay.methods.clear()
    linked = await client.post(
        "/api/wallets/link", json=await siwe_proof(client, account.address, account), headers=auth
    )
    assert linked.status_code == 201, linked.text
    assert relay.methods == []


async def test_a_chain_without_a_node_refuses_contract_wallets_as_before(
    client: httpx.AsyncClient, anvil: Anvil, relay: NodeRelay, telegram_id: int
) -> None:
    _, auth = await signed_in(client, telegram_id)
    owner = EthWallet()
    on_bnb = await siwe_proof(client, deploy(anvil, owner), owner, chain_id=56)
    assert await refused(client, auth, on_bnb) == (401, "siwe_bad_signature")
    assert relay.methods == []


async def test_a_node_that_is_down_answers_503_and_spends_nothing(
    client: httpx.AsyncClient, anvil: Anvil, relay: NodeRelay, telegram_id: int
) -> None:
    _, auth = await signed_in(client, telegram_id)
    owner = EthWallet()
    body = await siwe_proof(client, deploy(anvil, owner), owner)
    relay.stop()
    try:
        assert await refused(client, auth, body) == (503, "siwe_unverifiable")
        # An account's own signature needs no node, down or not.
        account = EthWallet()
        own = await siwe_proof(client, account.address, account)
        linked = await client.post("/api/wallets/link", json=own, headers=auth)
        assert linked.status_code == 201, linked.text
    finally:
        relay.start()
    # The challenge was not spent: the same proof passes once the node answers.
    again = await client.post("/api/wallets/link", json=body, headers=auth)
    assert again.status_code == 201, again.text
    assert again.json()["address"] == f"eip155:1:{body['address']}"


async def test_a_made_up_challenge_costs_the_node_nothing(
    client: httpx.AsyncClient, anvil: Anvil, relay: NodeRelay, telegram_id: int
) -> None:
    _, auth = await signed_in(client, telegram_id)
    owner = EthWallet()
    wallet = deploy(anvil, owner)
    body = await siwe_proof(client, wallet, owner)
    forged = body["message"].replace("Nonce: ", "Nonce: 0")
    body = {**body, "message": forged, "signature": owner.sign(forged)}
    relay.methods.clear()
    assert await refused(client, auth, body) == (401, "siwe_unknown_challenge")
    assert relay.methods == []
