"""The wallet proof verifiers on their own: TON Connect ton_proof and EIP-4361 (SIWE), with
proofs signed here by real keys, then forged, stale, early, for another domain or chain.  A SIWE
signature that is not the address's own is reported, not refused: the service asks the chain
whether a contract wallet accepts it (tests/integration/test_siwe_contract_wallets.py)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from backend.chains.siwe import SiweVerdict, parse_siwe, personal_sign_hash, verify_siwe
from backend.chains.tonproof import TonProof, proof_message, verify_ton_proof
from backend.chains.wallets import WALLET_CODES, BadWalletInput, WalletProofRefused
from tests.wallet_helpers import DOMAIN, ORIGIN, EthWallet, TonWallet, siwe_text

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(minutes=15)
SKEW = timedelta(seconds=60)
PAYLOAD = "a3f1" * 8


def ton(body: dict) -> TonProof:
    proof = body["proof"]
    return TonProof(
        address=body["address"],
        state_init=body["state_init"],
        timestamp=proof["timestamp"],
        domain=proof["domain"]["value"],
        domain_length=proof["domain"]["lengthBytes"],
        payload=proof["payload"],
        signature=proof["signature"],
        public_key=body.get("public_key"),
    )


def check_ton(body: dict) -> str:
    return verify_ton_proof(ton(body), domain=DOMAIN, now=NOW, max_age=MAX_AGE, skew=SKEW)


def refusal(error: pytest.ExceptionInfo[Exception]) -> str:
    return getattr(error.value, "code", "")


# --- the wallet codes -------------------------------------------------------------------------


def test_each_code_boc_hashes_to_its_key() -> None:
    for code_hash, code in WALLET_CODES.items():
        assert Cell.one_from_boc(bytes.fromhex(code.boc)).hash.hex() == code_hash, code.name
    # The hashes explorers show (base64) for v3r2, v4r2 and W5 (v5r1).
    shown = {base64.b64encode(bytes.fromhex(h)).decode() for h in WALLET_CODES}
    assert {
        "hNr6RJ+Ypph3ibojI1gHK8D3bcRSQAKl0JGLmnXS1Zk=",
        "/rX/aCDi/w2Ug+fg1iyBfYRniftK5YDIeIZtlZ2r1cA=",
        "IINLe3KxEhR+Gy+0V7hOdNGjDwT3N9T2KmaOlVLSty8=",
    } <= shown


def test_the_message_layout_follows_the_spec() -> None:
    wallet = TonWallet()
    message = proof_message(wallet.address, b"ab.cd", 0x0102030405060708, b"xyz")
    assert message == (
        b"ton-proof-item-v2/"
        + b"\x00\x00\x00\x00"
        + wallet.state_init().hash
        + b"\x05\x00\x00\x00ab.cd"
        + bytes([8, 7, 6, 5, 4, 3, 2, 1])
        + b"xyz"
    )
    masterchain = TonWallet(workchain=-1)
    assert proof_message(masterchain.address, b"", 0, b"")[18:22] == b"\xff\xff\xff\xff"


# --- ton_proof --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v3r2", "v4r2", "w5r1"])
def test_a_valid_proof_of_an_undeployed_wallet_verifies(version: str) -> None:
    wallet = TonWallet(version)
    body = wallet.body(PAYLOAD, int(NOW.timestamp()) - 30)
    assert check_ton(body) == wallet.raw
    # The user-friendly spelling of the same address is the same wallet.
    friendly = wallet.address.to_str(is_bounceable=False)
    assert check_ton({**body, "address": friendly}) == wallet.raw


def test_the_signature_is_over_the_double_hash() -> None:
    """Signed over sha256(message) alone (a common mistake) is refused."""
    wallet = TonWallet()
    body = wallet.body(PAYLOAD, int(NOW.timestamp()))
    message = proof_message(wallet.address, DOMAIN.encode(), int(NOW.timestamp()), PAYLOAD.encode())
    wrong = wallet.key.sign(hashlib.sha256(message).digest())
    body["proof"]["signature"] = base64.b64encode(wrong).decode()
    with pytest.raises(WalletProofRefused) as error:
        check_ton(body)
    assert refusal(error) == "ton_proof_bad_signature"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("forged", "ton_proof_bad_signature"),
        ("payload", "ton_proof_bad_signature"),
        ("expired", "ton_proof_expired"),
        ("future", "ton_proof_future"),
        ("domain", "ton_proof_wrong_domain"),
        ("length", "ton_proof_bad_domain"),
        ("address", "ton_proof_wrong_address"),
        ("unknown_code", "ton_proof_unknown_wallet"),
        ("public_key", "ton_proof_wrong_key"),
    ],
)
def test_bad_proofs_are_refused(change: str, code: str) -> None:
    wallet = TonWallet()
    now = int(NOW.timestamp())
    body = wallet.body(PAYLOAD, now)
    if change == "forged":
        body = wallet.body(PAYLOAD, now, signer=Ed25519PrivateKey.generate())
    elif change == "payload":
        body["proof"]["payload"] = "b" * 32
    elif change == "expired":
        body = wallet.body(PAYLOAD, now - 16 * 60)
    elif change == "future":
        body = wallet.body(PAYLOAD, now + 5 * 60)
    elif change == "domain":
        body = wallet.body(PAYLOAD, now, domain="evil.example")
    elif change == "length":
        body["proof"]["domain"]["lengthBytes"] += 1
    elif change == "address":
        # A proof for someone else's address, with our own stateInit: the hash gives it away.
        other = TonWallet()
        body = wallet.body(PAYLOAD, now, address=other.raw)
    elif change == "unknown_code":
        # A contract whose address does match its stateInit, but is no wallet we know: its
        # data could put any key anywhere.
        contract = Builder().store_uint(0xDEADBEEF, 32).end_cell()
        odd = wallet.state_init(code=contract)
        body = wallet.body(PAYLOAD, now, address=f"0:{odd.hash.hex()}", state_init=odd)
    elif change == "public_key":
        body["public_key"] = "00" * 32
    with pytest.raises(WalletProofRefused) as error:
        check_ton(body)
    assert refusal(error) == code


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("address", "not an address"),
        ("state_init", "!!!"),
        ("state_init", base64.b64encode(b"\x00\x01").decode()),
    ],
)
def test_unreadable_proofs_are_bad_input(field: str, value: str) -> None:
    body = TonWallet().body(PAYLOAD, int(NOW.timestamp()))
    body[field] = value
    with pytest.raises(BadWalletInput):
        check_ton(body)


# --- SIWE -------------------------------------------------------------------------------------


def check_siwe(wallet: EthWallet, text: str, signature: str | None = None) -> SiweVerdict:
    return verify_siwe(
        text,
        signature or wallet.sign(text),
        address=wallet.address,
        domain=DOMAIN,
        origin=ORIGIN,
        chain_ids=frozenset({1, 56}),
        now=NOW,
        max_age=MAX_AGE,
        skew=SKEW,
    )


@pytest.mark.parametrize("chain_id", [1, 56])
def test_a_valid_siwe_message_verifies(chain_id: int) -> None:
    wallet = EthWallet()
    text = siwe_text(
        wallet.address,
        "n0nce12345",
        NOW - timedelta(seconds=20),
        chain_id=chain_id,
        expiration=NOW + timedelta(minutes=5),
        not_before=NOW - timedelta(seconds=30),
        resources=("https://app.example.test/terms", "ipfs://bafy"),
    )
    verdict = check_siwe(wallet, text)
    assert verdict.signed and verdict.message.address == wallet.address
    assert verdict.signature == bytes.fromhex(wallet.sign(text)[2:])


def test_the_parser_reads_every_field_and_both_statement_forms() -> None:
    wallet = EthWallet()
    text = siwe_text(wallet.address, "abcdefgh", NOW, statement=None)
    parsed = parse_siwe(text)
    assert (parsed.domain, parsed.address, parsed.statement) == (DOMAIN, wallet.address, None)
    assert (parsed.uri, parsed.chain_id, parsed.nonce, parsed.issued_at) == (
        ORIGIN,
        1,
        "abcdefgh",
        NOW,
    )
    scheme = parse_siwe("https://" + siwe_text(wallet.address, "abcdefgh", NOW))
    assert scheme.scheme == "https"
    assert scheme.statement == "Link this wallet to SimplRefQ."


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("\n\nURI", "\nURI"),  # a blank line short
        lambda t: t.replace("Version: 1", "Version: 2"),
        lambda t: t.replace("Nonce: n0nce12345", "Nonce: short"),
        lambda t: t.replace("Chain ID: 1", "Chain ID: one"),
        lambda t: t.replace("Issued At: ", "Issued At: yesterday "),
        lambda t: t + "\nSurprise: field",
        lambda t: t.replace("Link this", "Link\u00e9 this"),  # outside the statement grammar
        lambda t: t.replace("\nVersion: 1\nChain ID: 1", "\nChain ID: 1\nVersion: 1"),
        lambda t: t.replace(" wants you", " would like you"),
    ],
)
def test_malformed_messages_are_refused(mangle: object) -> None:
    wallet = EthWallet()
    text = mangle(siwe_text(wallet.address, "n0nce12345", NOW))  # type: ignore[operator]
    with pytest.raises(BadWalletInput):
        check_siwe(wallet, text)


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"domain": "evil.example"}, "siwe_wrong_domain"),
        ({"uri": "https://evil.example/"}, "siwe_wrong_uri"),
        ({"chain_id": 137}, "siwe_wrong_chain"),
        ({"issued_at": NOW - timedelta(minutes=16)}, "siwe_expired"),
        ({"expiration": NOW - timedelta(seconds=1)}, "siwe_expired"),
        ({"issued_at": NOW + timedelta(minutes=5)}, "siwe_future"),
        ({"not_before": NOW + timedelta(minutes=5)}, "siwe_not_yet_valid"),
    ],
)
def test_messages_not_for_us_now_are_refused(options: dict, code: str) -> None:
    wallet = EthWallet()
    issued_at = options.pop("issued_at", NOW)
    text = siwe_text(wallet.address, "n0nce12345", issued_at, **options)
    with pytest.raises(WalletProofRefused) as error:
        check_siwe(wallet, text)
    assert refusal(error) == code


def test_a_signature_not_the_addresss_own_is_reported_for_the_chain_to_judge() -> None:
    wallet, mallory = EthWallet(), EthWallet()
    text = siwe_text(wallet.address, "n0nce12345", NOW)
    forged = check_siwe(wallet, text, mallory.sign(text))
    assert not forged.signed and forged.message.nonce == "n0nce12345"
    # Not an ECDSA signature at all, and a Safe-like 2-owner one: only a contract can say.
    for signature in ("0x" + "00" * 65, mallory.sign(text) + wallet.sign(text)[2:], "0x"):
        verdict = check_siwe(wallet, text, signature)
        assert not verdict.signed and verdict.signature == bytes.fromhex(signature[2:])
    for unreadable in ("0x" + "ab" * 4097, "0x123", "0xzz", "ab" * 65):
        with pytest.raises(BadWalletInput):
            check_siwe(wallet, text, unreadable)


def test_the_hash_a_contract_wallet_is_asked_is_what_personal_sign_signs() -> None:
    wallet = EthWallet()
    text = siwe_text(wallet.address, "n0nce12345", NOW)
    signed = wallet.account.unsafe_sign_hash(personal_sign_hash(text))
    assert "0x" + bytes(signed.signature).hex() == wallet.sign(text)
    assert personal_sign_hash(text + " ") != personal_sign_hash(text)


def test_unchecksummed_is_refused() -> None:
    wallet = EthWallet()
    lower = wallet.address.lower()
    text = siwe_text(lower, "n0nce12345", NOW)
    with pytest.raises(WalletProofRefused) as error:
        verify_siwe(
            text,
            wallet.sign(text),
            address=lower,
            domain=DOMAIN,
            origin=ORIGIN,
            chain_ids=frozenset({1}),
            now=NOW,
            max_age=MAX_AGE,
            skew=SKEW,
        )
    assert refusal(error) == "siwe_bad_address"
