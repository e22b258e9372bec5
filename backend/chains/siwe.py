"""Sign-In with Ethereum (EIP-4361): a strict parser of the message and its verification.

Written here rather than taken from the ``siwe`` package, which pins web3 below 8 and breaks
with abnf 2.9.  The parser follows the EIP's ABNF line by line and refuses anything else (a
missing blank line, an unknown field, fields out of order, a lower-case address).  Pure: the
clock is passed in, and a signature that is not the address's own ECDSA one is only reported,
for the service to ask the chain whether the address is a contract wallet that accepts it
(EIP-1271).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import is_checksum_address
from eth_utils.crypto import keccak

from backend.chains.wallets import BadWalletInput, WalletProofRefused
from backend.errors import DomainError

# Longer messages are no sign-in a wallet shows: refused before parsing.
MAX_MESSAGE_LENGTH = 4096
# A contract wallet's signature can be longer than an EOA's 65 bytes (a Safe's is 65 per owner
# who signs, a passkey account's some hundreds); 4 KiB covers them, well under the body limit.
MAX_SIGNATURE_BYTES = 4096
# An EOA's personal_sign signature: r, s, v.
ECDSA_SIGNATURE_BYTES = 65
_HEADER = re.compile(
    r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?(?P<domain>[^\s/?#]+)"
    r" wants you to sign in with your Ethereum account:$"
)
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
# reserved / unreserved / " " (RFC 3986), no line feed.
_STATEMENT = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;= ]*$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")
_NONCE = re.compile(r"^[A-Za-z0-9]{8,}$")
_CHAIN_ID = re.compile(r"^[0-9]{1,18}$")
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@%]*$")
_SIGNATURE = re.compile(r"^0x(?:[0-9a-fA-F]{2})*$")


@dataclass(frozen=True, slots=True)
class SiweMessage:
    scheme: str | None
    domain: str
    address: str
    statement: str | None
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SiweVerdict:
    message: SiweMessage
    signature: bytes
    signed: bool
    """The signature is the address's own ECDSA one.  False: only a contract wallet at the
    address can vouch for it (EIP-1271), or no one."""


class SiweUnverifiable(DomainError):
    """The signature is not the address's own, and the chain's node, which alone can say
    whether a contract wallet there accepts it (EIP-1271), did not answer: nothing was spent,
    the same proof may be sent again."""

    code = "siwe_unverifiable"


def refused(code: str, message: str) -> WalletProofRefused:
    return WalletProofRefused(message, code=f"siwe_{code}")


def _bad(message: str) -> BadWalletInput:
    return BadWalletInput(f"not an EIP-4361 message: {message}", code="siwe_malformed")


def _date_time(value: str, field: str) -> datetime:
    if not _DATE_TIME.match(value):
        raise _bad(f"{field} is not an RFC 3339 date-time")
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise _bad(f"{field} is not a valid date") from exc


def _field(lines: list[str], at: int, tag: str) -> str | None:
    """The value of line ``at`` if it is ``tag: value``; None when that line is another one."""
    if at < len(lines) and lines[at].startswith(f"{tag}: "):
        return lines[at][len(tag) + 2 :]
    return None


def parse_siwe(text: str) -> SiweMessage:
    """The message's fields, or ``siwe_malformed`` where it strays from the grammar."""
    if len(text) > MAX_MESSAGE_LENGTH:
        raise _bad("too long")
    lines = text.split("\n")
    if len(lines) < 9:
        raise _bad("too short")
    header = _HEADER.match(lines[0])
    if header is None:
        raise _bad("the first line")
    address = lines[1]
    if not _ADDRESS.match(address):
        raise _bad("the address")
    if lines[2] != "":
        raise _bad("a blank line must follow the address")
    at = 3
    statement = None
    if lines[at] != "":
        statement = lines[at]
        if not _STATEMENT.match(statement):
            raise _bad("the statement has characters the grammar does not allow")
        at += 1
    if lines[at] != "":
        raise _bad("a blank line must precede URI")
    at += 1
    values: list[str] = []
    for tag in ("URI", "Version", "Chain ID", "Nonce", "Issued At"):
        value = _field(lines, at, tag)
        if value is None:
            raise _bad(f"expected {tag!r} on line {at + 1}")
        values.append(value)
        at += 1
    uri, version, chain_id, nonce, issued_at = values
    if not _URI.match(uri):
        raise _bad("URI")
    if version != "1":
        raise _bad("Version must be 1")
    if not _CHAIN_ID.match(chain_id):
        raise _bad("Chain ID")
    if not _NONCE.match(nonce):
        raise _bad("Nonce must be 8 or more letters and digits")
    optional: dict[str, str] = {}
    for tag in ("Expiration Time", "Not Before", "Request ID"):
        value = _field(lines, at, tag)
        if value is not None:
            optional[tag] = value
            at += 1
    resources: list[str] = []
    if at < len(lines) and lines[at] == "Resources:":
        at += 1
        while at < len(lines) and lines[at].startswith("- "):
            resource = lines[at][2:]
            if not _URI.match(resource):
                raise _bad("a resource is not a URI")
            resources.append(resource)
            at += 1
    if at != len(lines):
        raise _bad(f"unexpected text on line {at + 1}")
    request_id = optional.get("Request ID")
    if request_id is not None and not _REQUEST_ID.match(request_id):
        raise _bad("Request ID")
    expiration = optional.get("Expiration Time")
    not_before = optional.get("Not Before")
    return SiweMessage(
        scheme=header.group("scheme"),
        domain=header.group("domain"),
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=int(chain_id),
        nonce=nonce,
        issued_at=_date_time(issued_at, "Issued At"),
        expiration_time=_date_time(expiration, "Expiration Time") if expiration else None,
        not_before=_date_time(not_before, "Not Before") if not_before else None,
        request_id=request_id,
        resources=tuple(resources),
    )


def _same_origin(uri: str, origin: str) -> bool:
    return uri == origin or uri.startswith(origin + "/")


def personal_sign_hash(text: str) -> bytes:
    """The EIP-191 hash a wallet signs for ``personal_sign``: what EIP-1271 wallets are asked."""
    data = text.encode()
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)


def verify_siwe(
    text: str,
    signature: str,
    *,
    address: str,
    domain: str,
    origin: str,
    chain_ids: frozenset[int],
    now: datetime,
    max_age: timedelta,
    skew: timedelta,
) -> SiweVerdict:
    """The message, if it is ours (domain, URI, chain) and current, and whether ``address``'s
    own key signed it.

    ``origin`` is our ``scheme://domain``: the URI must be on it.  The nonce is returned for
    the caller to spend, once it has the signature vouched for.
    """
    message = parse_siwe(text)
    if not is_checksum_address(message.address):
        raise refused("bad_address", "the address is not EIP-55 checksummed")
    if message.address != address:
        raise refused("wrong_address", "the message is signed for another address")
    scheme = origin.split("://", 1)[0]
    if message.domain != domain or (message.scheme is not None and message.scheme != scheme):
        raise refused("wrong_domain", "the message is for another domain")
    if not _same_origin(message.uri, origin):
        raise refused("wrong_uri", "the message's URI is not ours")
    if message.chain_id not in chain_ids:
        raise refused("wrong_chain", f"chain {message.chain_id} is not one we serve")
    if message.issued_at > now + skew:
        raise refused("future", "the message is issued in the future")
    if message.issued_at < now - max_age:
        raise refused("expired", "the message is too old: sign again")
    if message.expiration_time is not None and message.expiration_time <= now:
        raise refused("expired", "the message has expired")
    if message.not_before is not None and message.not_before > now + skew:
        raise refused("not_yet_valid", "the message is not valid yet")
    if len(signature) > 2 + 2 * MAX_SIGNATURE_BYTES or not _SIGNATURE.match(signature):
        raise BadWalletInput(
            f"the signature must be 0x and at most {MAX_SIGNATURE_BYTES} bytes of hex"
        )
    raw = bytes.fromhex(signature[2:])
    return SiweVerdict(message, raw, _recovers(text, raw) == message.address)


def _recovers(text: str, signature: bytes) -> str | None:
    """The address whose key made this ECDSA signature of ``text``; None when it is none."""
    if len(signature) != ECDSA_SIGNATURE_BYTES:
        return None
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=signature))
    except Exception:  # eth-keys raises several kinds for a malformed signature
        return None
