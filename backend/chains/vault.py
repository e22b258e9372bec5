"""The vault's withdrawal side, pure: the EIP-712 authorisation a user signs, whom a signature
recovers to, the calls the operator makes, and the vault's refusals by name.  I/O lives in
``txmanager.py`` and ``withdrawals.py``."""

from __future__ import annotations

from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

# ``EIP712("SimplRefQ Vault", "1")`` in Vault.sol.
DOMAIN_NAME = "SimplRefQ Vault"
DOMAIN_VERSION = "1"
WITHDRAWAL_FIELDS = [
    {"name": "user", "type": "address"},
    {"name": "token", "type": "address"},
    {"name": "amount", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
_WITHDRAWAL_TUPLE = "(address,address,uint256,uint256,uint256)"
WITHDRAW_SELECTOR = keccak(text=f"withdraw({_WITHDRAWAL_TUPLE},bytes)")[:4]
NONCES_SELECTOR = keccak(text="nonces(address)")[:4]
SWEEP_SELECTOR = keccak(text="sweep(bytes32,address[])")[:4]
# A withdrawal call's gas, measured on anvil at about 75k (ERC-20) and 45k (native) with a warm
# nonce slot; the margin covers a cold one and a token with a heavier transfer.
WITHDRAW_GAS = 150_000
SIGNATURE_BYTES = 65


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


# The vault's custom errors (and OpenZeppelin's it can raise) by selector: the codes a failed
# withdrawal records.
_ERRORS = {
    _selector("Expired(uint256)"): "authorization_expired",
    _selector("SignatureReplayed(address,uint256)"): "authorization_used",
    _selector("InvalidNonce(address,uint256,uint256)"): "authorization_out_of_order",
    _selector("InvalidSignature()"): "authorization_invalid",
    _selector("ECDSAInvalidSignature()"): "authorization_invalid",
    _selector("ECDSAInvalidSignatureLength(uint256)"): "authorization_invalid",
    _selector("ECDSAInvalidSignatureS(bytes32)"): "authorization_invalid",
    _selector("ExitPending(address)"): "exit_pending",
    _selector("EnforcedPause()"): "vault_paused",
    _selector("ERC20InsufficientBalance(address,uint256,uint256)"): "vault_short",
    _selector("SafeERC20FailedOperation(address)"): "vault_short",
    _selector("AddressInsufficientBalance(address)"): "vault_short",
    _selector("InsufficientBalance(uint256,uint256)"): "vault_short",
    _selector("AccessControlUnauthorizedAccount(address,bytes32)"): "operator_not_allowed",
}


def typed_data(
    chain_id: int, vault: str, user: str, token: str, amount: int, nonce: int, deadline: int
) -> dict[str, Any]:
    """The full EIP-712 message (``eth_signTypedData_v4``'s argument): the domain binds it to
    this chain and this vault, so it means nothing anywhere else.  uint256 values as decimal
    strings: JSON numbers lose precision past 2**53."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Withdrawal": WITHDRAWAL_FIELDS,
        },
        "primaryType": "Withdrawal",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(vault),
        },
        "message": {
            "user": to_checksum_address(user),
            "token": to_checksum_address(token),
            "amount": str(amount),
            "nonce": str(nonce),
            "deadline": str(deadline),
        },
    }


def signer_of(message: dict[str, Any], signature: str) -> str | None:
    """The address ``signature`` over the typed message recovers to (EIP-55), or None when it
    is no signature at all (wrong length, not hex, not on the curve)."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        return None
    if len(raw) != SIGNATURE_BYTES:
        return None
    numeric = {
        **message,
        "message": {
            key: int(value) if key in ("amount", "nonce", "deadline") else value
            for key, value in message["message"].items()
        },
    }
    try:
        signer = Account.recover_message(encode_typed_data(full_message=numeric), signature=raw)
    except Exception:  # eth-keys raises several types for a point off the curve or a bad v
        return None
    return str(signer)


def withdraw_call(
    user: str, token: str, amount: int, nonce: int, deadline: int, signature: str
) -> bytes:
    """Calldata of ``Vault.withdraw(Withdrawal, bytes)``."""
    arguments = abi_encode(
        [_WITHDRAWAL_TUPLE, "bytes"],
        [
            (to_checksum_address(user), to_checksum_address(token), amount, nonce, deadline),
            bytes.fromhex(signature.removeprefix("0x")),
        ],
    )
    return WITHDRAW_SELECTOR + arguments


def sweep_call(user_id: bytes, tokens: list[str]) -> bytes:
    """Calldata of ``Vault.sweep(userId, tokens)``: the forwarder's native coin and these
    tokens into the vault, credited to ``user_id``."""
    checksummed = [to_checksum_address(token) for token in tokens]
    return SWEEP_SELECTOR + abi_encode(["bytes32", "address[]"], [user_id, checksummed])


def nonces_call(user: str) -> bytes:
    """Calldata of ``Vault.nonces(user)``."""
    return NONCES_SELECTOR + abi_encode(["address"], [to_checksum_address(user)])


def decode_uint(data: str) -> int:
    (value,) = abi_decode(["uint256"], bytes.fromhex(data.removeprefix("0x")))
    return int(value)


def revert_code(data: str | None) -> str:
    """The code of a revert's data (``0x`` + selector + arguments), ``reverted`` when unknown."""
    if not data or len(data) < 10:
        return "reverted"
    try:
        selector = bytes.fromhex(data.removeprefix("0x")[:8])
    except ValueError:
        return "reverted"
    return _ERRORS.get(selector, "reverted")
