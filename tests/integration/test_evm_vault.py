"""The EVM vault on real nodes: anvil as Ethereum (chain id 1) and as BNB Chain (56), the committed
artifacts deployed with web3.py, withdrawals authorised by EIP-712 signatures made here."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi import abi
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD
from web3.types import RPCEndpoint, TxParams, TxReceipt, Wei

from backend.testing.anvil import Anvil, find_anvil, start_anvil
from tests.helpers import require

EVM = Path(__file__).resolve().parents[2] / "contracts" / "evm"
CHAIN_IDS = {"ethereum": 1, "bnb": 56}
NATIVE = "0x" + "00" * 20
EXIT_DELAY = 7 * 24 * 3600
# The order of secp256k1's group: s and n - s are both valid halves of a signature.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ETHER = 10**18
USER_ID = keccak(text="simplrefq-user-42")  # the backend's account id, as bytes32
WITHDRAWAL_TYPES = {
    "Withdrawal": [
        {"name": "user", "type": "address"},
        {"name": "token", "type": "address"},
        {"name": "amount", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


@pytest.fixture(autouse=True, scope="session")
def _needs_anvil() -> None:
    """A missing node is a failure in CI (scripts/test.sh installs it) and a skip elsewhere."""
    require("anvil", find_anvil() is not None, "run npm ci --prefix contracts/evm")


def artifact(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVM / "artifacts" / f"{name}.json").read_text())
    return data


@dataclass
class Chain:
    """One freshly deployed vault, with two test USDTs (6 and 18 decimals), and its people."""

    w3: Web3
    chain_id: int
    admin: ChecksumAddress
    operator: ChecksumAddress
    stranger: ChecksumAddress
    alice: LocalAccount
    vault: Contract
    usdt6: Contract
    usdt18: Contract

    def send(self, fn: ContractFunction, sender: ChecksumAddress, value: int = 0) -> TxReceipt:
        tx_hash = fn.transact(tx(sender, value))
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        return receipt

    def reverts(
        self, fn: ContractFunction, sender: ChecksumAddress, error: str, *args: Any, value: int = 0
    ) -> None:
        """The call fails with this custom error and these arguments."""
        with pytest.raises(ContractCustomError) as caught:
            fn.transact(tx(sender, value))
        assert decode_error(self.vault, self.usdt6, caught.value.data) == (error, args)

    def events(self, receipt: TxReceipt, name: str) -> tuple[Any, ...]:
        """The vault's events of this kind in the receipt (the tokens' own logs left aside)."""
        return tuple(self.vault.events[name]().process_receipt(receipt, errors=DISCARD))

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def balance(self, token: str, holder: str) -> int:
        if token == NATIVE:
            return int(self.w3.eth.get_balance(self.w3.to_checksum_address(holder)))
        contract = self.usdt6 if token == self.usdt6.address else self.usdt18
        return int(contract.functions.balanceOf(holder).call())

    def sign(self, signer: LocalAccount, token: str, amount: int, **over: int) -> tuple[Any, bytes]:
        """A withdrawal for `signer` and its signature; chain id, nonce, deadline overridable."""
        fields = {
            "user": signer.address,
            "token": token,
            "amount": amount,
            "nonce": over.get("nonce", self.vault.functions.nonces(signer.address).call()),
            "deadline": over.get("deadline", self.now() + 600),
        }
        domain = {
            "name": "SimplRefQ Vault",
            "version": "1",
            "chainId": over.get("chain_id", self.chain_id),
            "verifyingContract": self.vault.address,
        }
        signed = Account.sign_typed_data(signer.key, domain, WITHDRAWAL_TYPES, fields)
        return tuple(fields.values()), bytes(signed.signature)

    def fund_vault(self, token: str, amount: int) -> None:
        """Someone deposits, so the vault holds what withdrawals pay."""
        if token == NATIVE:
            self.send(self.vault.functions.deposit(USER_ID), self.stranger, value=amount)
            return
        usdt = self.usdt6 if token == self.usdt6.address else self.usdt18
        self.send(usdt.functions.mint(self.stranger, amount), self.stranger)
        self.send(usdt.functions.approve(self.vault.address, amount), self.stranger)
        self.send(self.vault.functions.depositToken(USER_ID, token, amount), self.stranger)

    def advance(self, seconds: int) -> None:
        self.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
        self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])


def tx(sender: ChecksumAddress, value: int = 0) -> TxParams:
    return {"from": sender, "value": Wei(value)}


def decode_error(vault: Contract, token: Contract, data: Any) -> tuple[str, tuple[Any, ...]]:
    """A revert's custom error by name, from the ABIs (ours and OpenZeppelin's)."""
    raw = bytes.fromhex(str(data).removeprefix("0x"))
    for entry in [*vault.abi, *token.abi]:
        if entry["type"] != "error":
            continue
        types = [item["type"] for item in entry["inputs"]]
        if keccak(text=f"{entry['name']}({','.join(types)})")[:4] == raw[:4]:
            values = abi.decode(types, raw[4:])
            return entry["name"], tuple(
                Web3.to_checksum_address(v) if t == "address" else v
                for t, v in zip(types, values, strict=True)
            )
    raise AssertionError(f"unknown revert data {data!r}")


@pytest.fixture(scope="session")
def anvils() -> Iterator[dict[int, tuple[Anvil, list[str]]]]:
    """Both chains, each with the snapshot of its pristine state (consumed and retaken per test)."""
    started: dict[int, tuple[Anvil, list[str]]] = {}
    try:
        for chain_id in CHAIN_IDS.values():
            node = start_anvil(chain_id)
            snapshot = Web3(HTTPProvider(node.url)).provider.make_request(
                RPCEndpoint("evm_snapshot"), []
            )
            started[chain_id] = (node, [str(snapshot["result"])])
        yield started
    finally:
        for node, _ in started.values():
            node.stop()


def deploy_chain(anvils: dict[int, tuple[Anvil, list[str]]], chain_id: int) -> Chain:
    """Resets the node to its pristine state, so addresses repeat across chains, and deploys."""
    node, snapshot = anvils[chain_id]
    w3 = Web3(HTTPProvider(node.url))
    assert w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot[0]])["result"] is True
    snapshot[0] = str(w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"])
    accounts: list[ChecksumAddress] = list(w3.eth.accounts)  # typed as a 1-tuple by web3
    admin, operator, stranger = accounts[0], accounts[1], accounts[2]
    alice: LocalAccount = Account.from_key(keccak(text="alice"))
    w3.provider.make_request(RPCEndpoint("anvil_impersonateAccount"), [alice.address])
    w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [alice.address, hex(10 * ETHER)])

    def deploy(name: str, *args: Any) -> Contract:
        spec = artifact(name)
        factory = w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
        receipt = w3.eth.wait_for_transaction_receipt(
            factory.constructor(*args).transact({"from": admin})
        )
        address = receipt["contractAddress"]
        assert address is not None
        return w3.eth.contract(address=address, abi=spec["abi"])

    return Chain(
        w3=w3,
        chain_id=chain_id,
        admin=admin,
        operator=operator,
        stranger=stranger,
        alice=alice,
        vault=deploy("Vault", admin, operator),
        usdt6=deploy("TestUSDT", 6),
        usdt18=deploy("TestUSDT", 18),
    )


@pytest.fixture(params=list(CHAIN_IDS.values()), ids=list(CHAIN_IDS))
def chain(request: pytest.FixtureRequest, anvils: dict[int, tuple[Anvil, list[str]]]) -> Chain:
    return deploy_chain(anvils, request.param)


def tokens(chain: Chain) -> list[str]:
    return [NATIVE, chain.usdt6.address, chain.usdt18.address]


# --- the artifacts ------------------------------------------------------------------------------


def test_committed_artifacts_match_the_source() -> None:
    installed = shutil.which("node") is not None and (EVM / "node_modules" / "solc").is_dir()
    require("solc", installed, "run npm ci --prefix contracts/evm")
    result = subprocess.run(
        ["node", str(EVM / "compile.mjs"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- deposits -----------------------------------------------------------------------------------


def test_a_native_deposit_emits_the_event_the_backend_credits(chain: Chain) -> None:
    receipt = chain.send(chain.vault.functions.deposit(USER_ID), chain.stranger, value=ETHER)
    (event,) = chain.events(receipt, "Deposited")
    assert dict(event["args"]) == {
        "userId": USER_ID,
        "from": chain.stranger,
        "token": NATIVE,
        "amount": ETHER,
    }
    assert chain.balance(NATIVE, chain.vault.address) == ETHER


@pytest.mark.parametrize("decimals", [6, 18])
def test_a_token_deposit_emits_the_event_in_the_token_s_units(chain: Chain, decimals: int) -> None:
    usdt = chain.usdt6 if decimals == 6 else chain.usdt18
    assert usdt.functions.decimals().call() == decimals
    amount = 125 * 10**decimals  # 125 USDT
    chain.send(usdt.functions.mint(chain.stranger, amount), chain.stranger)
    chain.send(usdt.functions.approve(chain.vault.address, amount), chain.stranger)
    receipt = chain.send(
        chain.vault.functions.depositToken(USER_ID, usdt.address, amount), chain.stranger
    )
    (event,) = chain.events(receipt, "Deposited")
    assert event["args"]["token"] == usdt.address
    assert event["args"]["amount"] == amount
    assert event["args"]["userId"] == USER_ID
    assert chain.balance(usdt.address, chain.vault.address) == amount


def test_an_empty_deposit_is_refused(chain: Chain) -> None:
    chain.reverts(chain.vault.functions.deposit(USER_ID), chain.stranger, "ZeroAmount")
    chain.reverts(
        chain.vault.functions.depositToken(USER_ID, chain.usdt6.address, 0),
        chain.stranger,
        "ZeroAmount",
    )


# --- withdrawals --------------------------------------------------------------------------------


@pytest.mark.parametrize("which", [0, 1, 2], ids=["native", "usdt6", "usdt18"])
def test_a_signed_withdrawal_pays_the_user(chain: Chain, which: int) -> None:
    token = tokens(chain)[which]
    chain.fund_vault(token, 5 * ETHER)
    chain.send(
        chain.vault.functions.settle(chain.alice.address, token, 3 * ETHER, 0), chain.operator
    )
    before = chain.balance(token, chain.alice.address)
    withdrawal, signature = chain.sign(chain.alice, token, 2 * ETHER)
    receipt = chain.send(chain.vault.functions.withdraw(withdrawal, signature), chain.operator)
    (event,) = chain.events(receipt, "Withdrawn")
    assert (event["args"]["amount"], event["args"]["nonce"]) == (2 * ETHER, 0)
    assert chain.balance(token, chain.alice.address) == before + 2 * ETHER
    assert chain.vault.functions.nonces(chain.alice.address).call() == 1
    # What the user may still take through the escape hatch shrinks with what was paid.
    assert chain.vault.functions.settledBalance(chain.alice.address, token).call() == ETHER


def test_a_withdrawal_signature_cannot_be_replayed(chain: Chain) -> None:
    chain.fund_vault(NATIVE, 5 * ETHER)
    withdrawal, signature = chain.sign(chain.alice, NATIVE, ETHER)
    chain.send(chain.vault.functions.withdraw(withdrawal, signature), chain.operator)
    chain.reverts(
        chain.vault.functions.withdraw(withdrawal, signature),
        chain.operator,
        "SignatureReplayed",
        chain.alice.address,
        0,
    )


def test_a_withdrawal_with_a_nonce_ahead_is_refused(chain: Chain) -> None:
    chain.fund_vault(NATIVE, ETHER)
    withdrawal, signature = chain.sign(chain.alice, NATIVE, ETHER, nonce=1)
    chain.reverts(
        chain.vault.functions.withdraw(withdrawal, signature),
        chain.operator,
        "InvalidNonce",
        chain.alice.address,
        0,
        1,
    )


def test_an_expired_withdrawal_is_refused(chain: Chain) -> None:
    chain.fund_vault(NATIVE, ETHER)
    deadline = chain.now() - 1
    withdrawal, signature = chain.sign(chain.alice, NATIVE, ETHER, deadline=deadline)
    chain.reverts(
        chain.vault.functions.withdraw(withdrawal, signature), chain.operator, "Expired", deadline
    )


def test_a_withdrawal_the_user_did_not_sign_is_refused(chain: Chain) -> None:
    chain.fund_vault(NATIVE, 2 * ETHER)
    withdrawal, signature = chain.sign(chain.alice, NATIVE, ETHER)
    inflated = (*withdrawal[:2], 2 * ETHER, *withdrawal[3:])
    chain.reverts(
        chain.vault.functions.withdraw(inflated, signature), chain.operator, "InvalidSignature"
    )


def test_a_malformed_or_malleable_signature_is_refused(chain: Chain) -> None:
    chain.fund_vault(NATIVE, ETHER)
    withdrawal, signature = chain.sign(chain.alice, NATIVE, ETHER)
    withdraw = chain.vault.functions.withdraw
    chain.reverts(
        withdraw(withdrawal, signature[:64]), chain.operator, "ECDSAInvalidSignatureLength", 64
    )
    # The same signature with s mirrored (n - s) and v flipped also recovers the user; only
    # the low-s form is accepted, so a signature has exactly one valid encoding.
    high_s = (SECP256K1_N - int.from_bytes(signature[32:64], "big")).to_bytes(32, "big")
    malleated = signature[:32] + high_s + bytes([55 - signature[64]])
    chain.reverts(withdraw(withdrawal, malleated), chain.operator, "ECDSAInvalidSignatureS", high_s)
    unrecoverable = bytes(32) + (1).to_bytes(32, "big") + bytes([27])
    chain.reverts(withdraw(withdrawal, unrecoverable), chain.operator, "ECDSAInvalidSignature")
    chain.send(withdraw(withdrawal, signature), chain.operator)


@pytest.mark.parametrize("which", [0, 1], ids=["native", "usdt6"])
def test_a_withdrawal_beyond_what_the_vault_holds_reverts(chain: Chain, which: int) -> None:
    token = tokens(chain)[which]
    chain.fund_vault(token, 100)
    withdrawal, signature = chain.sign(chain.alice, token, 101)
    if token == NATIVE:
        expected: tuple[Any, ...] = ("InsufficientBalance", 100, 101)
    else:
        expected = ("ERC20InsufficientBalance", chain.vault.address, 100, 101)
    chain.reverts(chain.vault.functions.withdraw(withdrawal, signature), chain.operator, *expected)
    assert chain.vault.functions.nonces(chain.alice.address).call() == 0


def test_only_the_operator_submits_and_only_the_admin_pauses(chain: Chain) -> None:
    chain.fund_vault(NATIVE, ETHER)
    withdrawal, signature = chain.sign(chain.alice, NATIVE, ETHER)
    operator_role = chain.vault.functions.OPERATOR_ROLE().call()
    for fn in (
        chain.vault.functions.withdraw(withdrawal, signature),
        chain.vault.functions.settle(chain.alice.address, NATIVE, ETHER, 0),
    ):
        chain.reverts(
            fn, chain.stranger, "AccessControlUnauthorizedAccount", chain.stranger, operator_role
        )
    admin_role = b"\x00" * 32
    chain.reverts(
        chain.vault.functions.renounceRole(operator_role, chain.operator),
        chain.stranger,
        "AccessControlBadConfirmation",
    )
    for fn in (chain.vault.functions.pause(), chain.vault.functions.unpause()):
        chain.reverts(
            fn, chain.operator, "AccessControlUnauthorizedAccount", chain.operator, admin_role
        )


def test_a_paused_vault_takes_and_pays_nothing_until_unpaused(chain: Chain) -> None:
    chain.fund_vault(NATIVE, ETHER)
    withdrawal, signature = chain.sign(chain.alice, NATIVE, ETHER)
    chain.send(chain.vault.functions.pause(), chain.admin)
    chain.reverts(chain.vault.functions.pause(), chain.admin, "EnforcedPause")
    chain.reverts(
        chain.vault.functions.deposit(USER_ID), chain.stranger, "EnforcedPause", value=ETHER
    )
    paused: list[tuple[ContractFunction, ChecksumAddress]] = [
        (chain.vault.functions.depositToken(USER_ID, chain.usdt6.address, 1), chain.stranger),
        (chain.vault.functions.sweep(USER_ID, []), chain.stranger),
        (chain.vault.functions.withdraw(withdrawal, signature), chain.operator),
        (chain.vault.functions.settle(chain.alice.address, NATIVE, ETHER, 0), chain.operator),
    ]
    for fn, sender in paused:
        chain.reverts(fn, sender, "EnforcedPause")
    chain.send(chain.vault.functions.unpause(), chain.admin)
    chain.reverts(chain.vault.functions.unpause(), chain.admin, "ExpectedPause")
    chain.send(chain.vault.functions.withdraw(withdrawal, signature), chain.operator)


def test_a_signature_for_ethereum_is_refused_on_bnb_chain(
    anvils: dict[int, tuple[Anvil, list[str]]],
) -> None:
    ethereum, bnb = deploy_chain(anvils, 1), deploy_chain(anvils, 56)
    # Same deployer and nonce: one vault address on both chains, so only the chain id differs.
    assert ethereum.vault.address == bnb.vault.address
    for side in (ethereum, bnb):
        side.fund_vault(NATIVE, ETHER)
    withdrawal, signature = ethereum.sign(ethereum.alice, NATIVE, ETHER)
    bnb.reverts(
        bnb.vault.functions.withdraw(withdrawal, signature), bnb.operator, "InvalidSignature"
    )
    ethereum.send(ethereum.vault.functions.withdraw(withdrawal, signature), ethereum.operator)


# --- the escape hatch ---------------------------------------------------------------------------


def test_the_escape_hatch_pays_the_settled_balance_after_the_delay(chain: Chain) -> None:
    vault, alice = chain.vault.functions, chain.alice.address
    usdt = chain.usdt6.address
    chain.fund_vault(usdt, 1_000_000)
    chain.fund_vault(NATIVE, ETHER)
    chain.send(vault.settle(alice, usdt, 500_000, 0), chain.operator)
    chain.send(vault.settle(alice, NATIVE, 3 * ETHER, 0), chain.operator)  # more than it holds

    chain.reverts(vault.exit(usdt), alice, "ExitNotRequested", alice)
    receipt = chain.send(vault.requestExit(), alice)
    available_at = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + EXIT_DELAY
    (event,) = chain.events(receipt, "ExitRequested")
    assert event["args"]["availableAt"] == available_at
    chain.reverts(vault.requestExit(), alice, "ExitAlreadyRequested", alice)
    chain.reverts(vault.exit(usdt), alice, "ExitTooEarly", alice, available_at)

    # Before the delay the operator may only settle: no more withdrawals for this user.
    withdrawal, signature = chain.sign(chain.alice, usdt, 1)
    chain.reverts(vault.withdraw(withdrawal, signature), chain.operator, "ExitPending", alice)
    chain.send(vault.settle(alice, usdt, 400_000, 0), chain.operator)

    chain.advance(EXIT_DELAY)
    chain.reverts(vault.settle(alice, usdt, 900_000, 0), chain.operator, "SettlementClosed", alice)
    chain.send(vault.pause(), chain.admin)  # a paused vault still lets users out
    before = chain.balance(usdt, alice)
    receipt = chain.send(vault.exit(usdt), alice)
    assert chain.balance(usdt, alice) == before + 400_000
    (exited,) = chain.events(receipt, "Exited")
    assert exited["args"]["amount"] == 400_000
    chain.reverts(vault.exit(usdt), alice, "AlreadyExited", alice, usdt)

    # Settled above what the vault holds: the user gets the holding, not more.
    before = chain.balance(NATIVE, alice)
    receipt = chain.send(vault.exit(NATIVE), alice)
    gas = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert chain.balance(NATIVE, alice) == before + ETHER - gas
    chain.reverts(
        vault.exit(chain.usdt18.address), alice, "NothingToExit", alice, chain.usdt18.address
    )


def test_a_settlement_older_than_the_last_withdrawal_is_stale(chain: Chain) -> None:
    chain.fund_vault(NATIVE, ETHER)
    withdrawal, signature = chain.sign(chain.alice, NATIVE, ETHER // 2)
    chain.send(chain.vault.functions.withdraw(withdrawal, signature), chain.operator)
    chain.reverts(
        chain.vault.functions.settle(chain.alice.address, NATIVE, ETHER, 0),
        chain.operator,
        "StaleSettlement",
        chain.alice.address,
        1,
    )


# --- per-user deposit addresses -----------------------------------------------------------------


def test_funds_sent_to_a_predicted_deposit_address_are_swept_to_the_user(chain: Chain) -> None:
    vault = chain.vault.functions
    forwarder = artifact("DepositForwarder")
    init_code = bytes.fromhex(forwarder["bytecode"][2:]) + abi.encode(["bytes32"], [USER_ID])
    create2 = keccak(b"\xff" + bytes.fromhex(chain.vault.address[2:]) + USER_ID + keccak(init_code))
    predicted = Web3.to_checksum_address(create2[12:])
    assert vault.forwarderAddress(USER_ID).call() == predicted
    assert chain.w3.eth.get_code(predicted) == b""

    # The user just sends funds there, before any contract exists.
    chain.w3.eth.wait_for_transaction_receipt(
        chain.w3.eth.send_transaction(
            {"from": chain.stranger, "to": predicted, "value": Wei(ETHER)}
        )
    )
    chain.send(chain.usdt6.functions.mint(predicted, 7_000_000), chain.stranger)
    chain.send(chain.usdt18.functions.mint(predicted, 7 * ETHER), chain.stranger)

    def sweep() -> TxReceipt:  # anyone may sweep: the funds can only go to this user
        return chain.send(
            vault.sweep(USER_ID, [chain.usdt6.address, chain.usdt18.address]), chain.stranger
        )

    receipt = sweep()
    assert chain.w3.eth.get_code(predicted) != b""
    (deployed,) = chain.events(receipt, "ForwarderDeployed")
    assert deployed["args"]["forwarder"] == predicted
    credited = [
        (e["args"]["userId"], e["args"]["from"], e["args"]["token"], e["args"]["amount"])
        for e in chain.events(receipt, "Deposited")
    ]
    assert credited == [
        (USER_ID, predicted, NATIVE, ETHER),
        (USER_ID, predicted, chain.usdt6.address, 7_000_000),
        (USER_ID, predicted, chain.usdt18.address, 7 * ETHER),
    ]
    for token in tokens(chain):
        assert chain.balance(token, predicted) == 0

    # Later sends go to the same address; a second sweep reuses the forwarder.
    chain.send(chain.usdt6.functions.mint(predicted, 1_000_000), chain.stranger)
    receipt = sweep()
    assert chain.events(receipt, "ForwarderDeployed") == ()
    (event,) = chain.events(receipt, "Deposited")
    assert event["args"]["amount"] == 1_000_000
    assert chain.balance(chain.usdt6.address, chain.vault.address) == 8_000_000
