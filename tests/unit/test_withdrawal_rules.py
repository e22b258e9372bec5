"""The pure parts of withdrawals: fee bumps, the vault's refusals by name, whom a signature
recovers to, and the checks a request meets before any node is asked."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eth_abi.abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from backend.chains.txmanager import Fees
from backend.chains.vault import revert_code, signer_of, typed_data
from backend.chains.withdrawals import InvalidAddress, evm_address
from backend.config import WithdrawalLimits

VAULT = "0x" + "11" * 20
USDT = "0x" + "22" * 20


def test_a_bump_raises_both_fees_rounded_up() -> None:
    fees = Fees(max_fee=101, tip=3).bumped(25)
    assert fees == Fees(max_fee=127, tip=4)  # 126.25 and 3.75, up
    assert Fees(10, 1).at_least(Fees(5, 2)) == Fees(10, 2)


def test_the_vault_s_refusals_have_names() -> None:
    def error(signature: str, types: list[str], values: list[object]) -> str:
        return "0x" + (keccak(text=signature)[:4] + encode(types, values)).hex()

    assert revert_code(error("Expired(uint256)", ["uint256"], [5])) == "authorization_expired"
    assert revert_code(error("InvalidSignature()", [], [])) == "authorization_invalid"
    balance = error(
        "ERC20InsufficientBalance(address,uint256,uint256)",
        ["address", "uint256", "uint256"],
        [VAULT, 1, 2],
    )
    assert revert_code(balance) == "vault_short"
    assert revert_code(error("Unheard()", [], [])) == "reverted"
    assert revert_code(None) == "reverted"
    assert revert_code("0xzz") == "reverted"


def test_a_signature_recovers_to_its_signer_for_this_chain_and_vault_only() -> None:
    wallet = Account.create()
    message = typed_data(1, VAULT, wallet.address, USDT, 10**6, 0, 2**40)
    numeric = {**message, "message": {**message["message"], "amount": 10**6, "nonce": 0}}
    numeric["message"]["deadline"] = 2**40
    signature = (
        "0x" + bytes(wallet.sign_message(encode_typed_data(full_message=numeric)).signature).hex()
    )
    assert signer_of(message, signature) == wallet.address
    assert signer_of(typed_data(56, VAULT, wallet.address, USDT, 10**6, 0, 2**40), signature) != (
        wallet.address
    )
    assert signer_of(typed_data(1, USDT, wallet.address, USDT, 10**6, 0, 2**40), signature) != (
        wallet.address
    )
    assert signer_of(typed_data(1, VAULT, wallet.address, USDT, 10**6, 1, 2**40), signature) != (
        wallet.address
    )
    for garbage in ("", "0x", "0x12", "nothex", "0x" + "00" * 65, signature + "00"):
        assert signer_of(message, garbage) is None


def test_addresses_are_evm_and_checksummed() -> None:
    wallet = Account.create().address
    assert evm_address(wallet) == wallet
    assert evm_address(wallet.lower()) == wallet  # no checksum given: taken as it is
    flipped = next(i for i, c in enumerate(wallet) if i > 1 and c.isalpha())
    typo = wallet[:flipped] + wallet[flipped].swapcase() + wallet[flipped + 1 :]
    for bad in (typo, wallet[2:], wallet + "00", "0:" + "ab" * 32, ""):
        with pytest.raises(InvalidAddress):
            evm_address(bad)


def test_limits_must_be_in_order() -> None:
    WithdrawalLimits(
        fee=Decimal(1), minimum=Decimal(2), maximum=Decimal(3), daily=Decimal(3), approval_above=0
    )
    with pytest.raises(ValueError, match="fee < minimum"):
        WithdrawalLimits(
            fee=Decimal(2),
            minimum=Decimal(2),
            maximum=Decimal(3),
            daily=Decimal(3),
            approval_above=Decimal(0),
        )
