"""The deposit routes through the real server: the chains served, a user's deposit address
(the vault's CREATE2 forwarder for their id), their deposits with confirmations, and the
refusals (unknown chain or asset, a chain with no vault, anonymous)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from backend.chains.deposit_models import ChainCursor, ChainDeposit, DepositStatus
from backend.chains.evm import deposit_address, forwarder_creation_code
from backend.db.uow import unit_of_work
from tests.helpers import RunningServer, make_settings, signed_in

VAULT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


async def test_chains_address_and_deposits(
    tmp_path: Path, new_telegram_id: Callable[[], int]
) -> None:
    settings = make_settings(
        tmp_path, chains={"evm": {"ethereum": {"chain_id": 1, "vault": VAULT, "usdt": VAULT}}}
    )
    async with RunningServer(settings) as server, server.client() as client:
        listed = await client.get("/api/chains")
        assert listed.status_code == 200, listed.text
        chains = {c["chain"]: c for c in listed.json()}
        assert {
            name: (c["chain_id"], c["confirmations"], c["open"]) for name, c in chains.items()
        } == {
            "ethereum": (1, 12, True),
            "bnb": (56, 15, False),  # the defaults of a chain not configured here
        }
        usdt, eth = chains["ethereum"]["assets"]
        # Withdrawals: the defaults' fee and limits per asset, paid only with a node and a vault.
        assert usdt.pop("withdrawals") == {
            "fee": "1",
            "minimum": "10",
            "maximum": "50000",
            "daily": "100000",
            "approval_above": "10000",
        }
        assert eth.pop("withdrawals")["fee"] == "0.001"
        assert chains["bnb"]["assets"][1]["withdrawals"]["minimum"] == "0.02"
        assert not chains["ethereum"]["withdrawals_open"]  # a vault, but no node to pay from
        assert not chains["bnb"]["withdrawals_open"]
        assert usdt == {"asset": "USDT", "token": VAULT, "decimals": 6, "minimum": "1"}
        assert chains["bnb"]["assets"][0]["decimals"] == 18
        native = "0x" + "00" * 20
        assert eth == {"asset": "ETH", "token": native, "decimals": 18, "minimum": "0.001"}
        assert chains["bnb"]["assets"][1]["asset"] == "BNB"

        assert (await client.get("/api/deposits")).status_code == 401
        user, auth = await signed_in(client, new_telegram_id())
        found = await client.get(
            "/api/deposits/address", params={"chain": "ethereum", "asset": "USDT"}, headers=auth
        )
        assert found.status_code == 200, found.text
        code = forwarder_creation_code(settings.chains.forwarder_artifact)
        assert found.json() == {
            "chain": "ethereum",
            "asset": "USDT",
            "address": deposit_address(VAULT, user["id"], code),
            "user_id": "0x" + user["id"].to_bytes(32, "big").hex(),
        }
        native_address = await client.get(
            "/api/deposits/address", params={"chain": "ethereum", "asset": "ETH"}, headers=auth
        )
        assert native_address.status_code == 200, native_address.text
        assert native_address.json()["address"] == found.json()["address"]
        bnb_on_ethereum = await client.get(
            "/api/deposits/address", params={"chain": "ethereum", "asset": "BNB"}, headers=auth
        )
        assert bnb_on_ethereum.json()["error"] == "unknown_asset"
        for params, code_ in (
            ({"chain": "solana", "asset": "USDT"}, "unknown_chain"),
            ({"chain": "ethereum", "asset": "DOGE"}, "unknown_asset"),
        ):
            refused = await client.get("/api/deposits/address", params=params, headers=auth)
            assert (refused.status_code, refused.json()["error"]) == (400, code_)

        async with unit_of_work(server.app.state.resources.db) as uow:
            uow.session.add(ChainCursor(chain="ethereum", block_number=104, block_hash="0x1"))
            uow.session.add(
                ChainDeposit(
                    chain="ethereum",
                    tx_hash="0x" + "aa" * 32,
                    log_index=3,
                    user_id=user["id"],
                    asset="USDT",
                    amount=2_500_000,
                    raw_amount="2500000",
                    sender=VAULT,
                    block_number=100,
                    block_hash="0x2",
                    status=DepositStatus.SEEN.value,
                )
            )
        mine = await client.get("/api/deposits", headers=auth)
        assert mine.status_code == 200, mine.text
        (deposit,) = mine.json()
        assert deposit["amount"] == "2.5" and deposit["status"] == "seen"
        assert (deposit["confirmations"], deposit["required"]) == (5, 12)
        _, other = await signed_in(client, new_telegram_id())
        assert (await client.get("/api/deposits", headers=other)).json() == []


async def test_a_chain_without_a_vault_takes_no_deposits(
    tmp_path: Path, new_telegram_id: Callable[[], int]
) -> None:
    async with RunningServer(make_settings(tmp_path)) as server, server.client() as client:
        _, auth = await signed_in(client, new_telegram_id())
        refused = await client.get(
            "/api/deposits/address", params={"chain": "bnb", "asset": "USDT"}, headers=auth
        )
        assert (refused.status_code, refused.json()["error"]) == (409, "deposits_unavailable")
