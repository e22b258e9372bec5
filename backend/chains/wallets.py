"""Wallets: the refusals every wallet route shares, and the TON wallet codes we recognise.

A ton_proof names its wallet by a ``stateInit`` (code and data).  The code is recognised by its
cell hash (the hash TON explorers show as the code hash), and the data layout of each code says
where its Ed25519 public key sits.  The code BOCs themselves are kept for building stateInits
(tests, tools); tests/unit/test_wallet_proofs.py checks each hashes to its key here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.errors import BadRequest, Conflict, NotFound, Unauthorized

WalletKind = Literal["ton_proof", "siwe"]
KINDS: tuple[WalletKind, ...] = ("ton_proof", "siwe")


class WalletProofRefused(Unauthorized):
    """A proof that does not verify; each instance carries a finer code (``ton_proof_expired``,
    ``siwe_bad_signature``...)."""

    code = "wallet_proof_refused"


class BadWalletInput(BadRequest):
    """A proof that cannot even be read: an address, a BOC or a message that does not parse."""

    code = "bad_wallet_input"


class WalletTaken(Conflict):
    code = "wallet_taken"


class WalletNotFound(NotFound):
    code = "wallet_not_found"


class WalletNotLinked(Unauthorized):
    code = "wallet_not_linked"


@dataclass(frozen=True, slots=True)
class WalletCode:
    name: str
    key_offset: int
    """Bits of the data cell before the 256-bit public key."""
    boc: str
    """The code cell as a hex BOC."""


# The standard wallet contracts (ton-blockchain/wallet-contract, wallet-contract-v5), keyed by
# their code cell hash (hex; base64 in brackets, as explorers show it).  Data layouts:
#   v3: seqno:uint32 wallet_id:uint32 public_key:bits256
#   v4: seqno:uint32 wallet_id:uint32 public_key:bits256 plugins:(Maybe ^Cell)
#   W5: is_signature_allowed:bool seqno:uint32 wallet_id:uint32 public_key:bits256 extensions
_V3R1 = (
    "b5ee9c720101010100620000c0ff0020dd2082014c97ba9730ed44d0d70b1fe0a4f2608308d71820d31fd31fd31f"
    "f82313bbf263ed44d0d31fd31fd3ffd15132baf2a15144baf2a204f901541055f910f2a3f8009320d74a96d307d4"
    "02fb00e8d101a4c8cb1fcb1fcbffc9ed54"
)
_V3R2 = (
    "b5ee9c720101010100710000deff0020dd2082014c97ba218201339cbab19f71b0ed44d0d31fd31f31d70bffe304"
    "e0a4f2608308d71820d31fd31fd31ff82313bbf263ed44d0d31fd31fd3ffd15132baf2a15144baf2a204f9015410"
    "55f910f2a3f8009320d74a96d307d402fb00e8d101a4c8cb1fcb1fcbffc9ed54"
)
_V4R2 = (
    "b5ee9c72010214010002d4000114ff00f4a413f4bcf2c80b01020120020f020148030602e6d001d0d3032171b092"
    "5f04e022d749c120925f04e002d31f218210706c7567bd22821064737472bdb0925f05e003fa403020fa4401c8ca"
    "07cbffc9d0ed44d0810140d721f404305c810108f40a6fa131b3925f07e005d33fc8258210706c7567ba923830e3"
    "0d03821064737472ba925f06e30d0405007801fa00f40430f8276f2230500aa121bef2e0508210706c7567831eb1"
    "7080185004cb0526cf1658fa0219f400cb6917cb1f5260cb3f20c98040fb0006008a5004810108f45930ed44d081"
    "0140d720c801cf16f400c9ed540172b08e23821064737472831eb17080185005cb055003cf1623fa0213cb6acb1f"
    "cb3fc98040fb00925f03e2020120070e020120080d020158090a003db29dfb513420405035c87d010c00b23281f2"
    "fff274006040423d029be84c600201200b0c0019adce76a26840206b90eb85ffc00019af1df6a26840106b90eb85"
    "8fc00011b8c97ed44d0d70b1f80059bd242b6f6a2684080a06b90fa0218470d4080847a4937d29910ce6903e9ff9"
    "837812801b7810148987159f318404f8f28308d71820d31fd31fd31f02f823bbf264ed44d0d31fd31fd3fff404d1"
    "5143baf2a15151baf2a205f901541064f910f2a3f80024a4c8cb1f5240cb1f5230cbff5210f400c9ed54f80f01d3"
    "0721c0009f6c519320d74a96d307d402fb00e830e021c001e30021c002e30001c0039130e30d03a4c8cb1f12cb1f"
    "cbff10111213006ed207fa00d4d422f90005c8ca0715cbffc9d077748018c8cb05cb0222cf165005fa0214cb6b12"
    "ccccc973fb00c84014810108f451f2a7020070810108d718fa00d33fc8542047810108f451f2a782106e6f746570"
    "748018c8cb05cb025006cf165004fa0214cb6a12cb1fcb3fc973fb0002006c810108d718fa00d33f305224810108"
    "f459f2a782106473747270748018c8cb05cb025005cf165003fa0213cb6acb1f12cb3fc973fb00000af400c9ed54"
)
_W5R1 = (
    "b5ee9c7201021401000281000114ff00f4a413f4bcf2c80b01020120020d020148030402dcd020d749c120915b8f"
    "6320d70b1f2082106578746ebd21821073696e74bdb0925f03e082106578746eba8eb48020d72101d074d721fa40"
    "30fa44f828fa443058bd915be0ed44d0810141d721f4058307f40e6fa1319130e18040d721707fdb3ce03120d749"
    "810280b99130e070e2100f020120050c020120060902016e07080019adce76a2684020eb90eb85ffc00019af1df6"
    "a2684010eb90eb858fc00201480a0b0017b325fb51341c75c875c2c7e00011b262fb513435c280200019be5f0f6a"
    "2684080a0eb90fa02c0102f20e011e20d70b1f82107369676ebaf2e08a7f0f01e68ef0eda2edfb218308d7220283"
    "08d723208020d721d31fd31fd31fed44d0d200d31f20d31fd3ffd70a000af90140ccf9109a28945f0adb31e1f2c0"
    "87df02b35007b0f2d0845125baf2e0855036baf2e086f823bbf2d0882292f800de01a47fc8ca00cb1f01cf16c9ed"
    "542092f80fde70db3cd81003f6eda2edfb02f404216e926c218e4c0221d73930709421c700b38e2d01d72820761e"
    "436c20d749c008f2e09320d74ac002f2e09320d71d06c712c2005230b0f2d089d74cd7393001a4e86c128407bbf2"
    "e093d74ac000f2e093ed55e2d20001c000915be0ebd72c08142091709601d72c081c12e25210b1e30f20d74a1112"
    "13009601fa4001fa44f828fa443058baf2e091ed44d0810141d718f405049d7fc8ca0040048307f453f2e08b8e14"
    "038307f45bf2e08c22d70a00216e01b3b0f2d090e2c85003cf1612f400c9ed54007230d72c08248e2d21f2e092d2"
    "00ed44d0d2005113baf2d08f54503091319c01810140d721d70a00f2e08ee2c8ca0058cf16c9ed5493f2c08de200"
    "10935bdb31e1d74cd0"
)

WALLET_CODES: dict[str, WalletCode] = {
    # thBBpYp5gLlG6PueGY48kE0keZ/6NldOpCUcQaVm9YE=
    "b61041a58a7980b946e8fb9e198e3c904d24799ffa36574ea4251c41a566f581": WalletCode(
        "v3r1", 64, _V3R1
    ),
    # hNr6RJ+Ypph3ibojI1gHK8D3bcRSQAKl0JGLmnXS1Zk=
    "84dafa449f98a6987789ba232358072bc0f76dc4524002a5d0918b9a75d2d599": WalletCode(
        "v3r2", 64, _V3R2
    ),
    # /rX/aCDi/w2Ug+fg1iyBfYRniftK5YDIeIZtlZ2r1cA=
    "feb5ff6820e2ff0d9483e7e0d62c817d846789fb4ae580c878866d959dabd5c0": WalletCode(
        "v4r2", 64, _V4R2
    ),
    # IINLe3KxEhR+Gy+0V7hOdNGjDwT3N9T2KmaOlVLSty8=
    "20834b7b72b112147e1b2fb457b84e74d1a30f04f737d4f62a668e9552d2b72f": WalletCode(
        "w5r1", 65, _W5R1
    ),
}
