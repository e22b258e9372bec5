"""The Wallet tab's withdraw form and withdrawal history in real headless Chromium, against a
real app server paying from a real chain: anvil as Ethereum with the compiled Vault and a test
USDT, the vault funded by minting to it, the app's payouts sending with an operator key of
their own.

The page's user gets USDT from the demo faucet; the fake EIP-1193 wallet at window.ethereum
signs the quote's EIP-712 message in Python with eth-account. What must hold: a withdrawal goes
from the form through the wallet's signature to the chain and shows confirmed live, the wallet
holds the amount less the fee on chain and the balance shown dropped by the amount; an amount
above the balance, or a receiving wallet that is not the connected one, is refused in words
with nothing asked of the wallet and nothing moved; a withdrawal above the approval threshold
waits, and Cancel brings its amount back.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from playwright.async_api import Browser, Page
from web3 import HTTPProvider, Web3
from web3.contract import Contract

from backend.testing.anvil import find_anvil, start_anvil
from tests.chain_helpers import deploy_contract, rpc
from tests.chain_helpers import sign_withdrawal as sign
from tests.helpers import Server, open_page, require
from tests.signals_helpers import own_server

pytestmark = pytest.mark.browser

DECIMALS = 6  # USDT's on Ethereum
CONFIRMATIONS = 3
# Low enough that a test amount needs an admin; the faucet's 10,000 USDT under the maximum.
LIMITS = {
    "fee": "1",
    "minimum": "10",
    "maximum": "20000",
    "daily": "50000",
    "approval_above": "100",
}

# The fake wallet the page finds at window.ethereum: its one account from here, signatures from
# Python (window.signTyped, exposed by the test). It notes whether the form's button was
# disabled while it was asked to sign, and what the form's summary said then (the quote's).
FAKE_PROVIDER = """
window.__eth = {calls: [], busy: [], summaries: []};
window.ethereum = {
  async request({method, params}) {
    window.__eth.calls.push(method);
    if (method === "eth_requestAccounts" || method === "eth_accounts") return [window.__ethAddress];
    if (method === "eth_chainId") return "0x1";
    if (method === "eth_signTypedData_v4") {
      window.__eth.busy.push(document.getElementById("wlt-wd-submit").disabled);
      window.__eth.summaries.push(document.getElementById("wlt-wd-summary").innerText);
      return window.signTyped(params[0], params[1]);
    }
    throw Object.assign(new Error("unsupported " + method), {code: 4200});
  },
};
"""


@dataclass
class Chain:
    w3: Web3
    url: str
    vault: Contract
    usdt: Contract
    operator: LocalAccount

    def rpc(self, method: str, *params: Any) -> Any:
        return rpc(self.w3, method, *params)

    def usdt_of(self, holder: str) -> int:
        return int(self.usdt.functions.balanceOf(holder).call())


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    require("anvil", find_anvil() is not None, "run npm ci --prefix contracts/evm")
    node = start_anvil(1)
    try:
        w3 = Web3(HTTPProvider(node.url))
        admin = w3.eth.accounts[0]
        operator: LocalAccount = Account.create()

        vault = deploy_contract(w3, "Vault", admin, admin, operator.address)
        usdt = deploy_contract(w3, "TestUSDT", admin, DECIMALS)
        made = Chain(w3, node.url, vault, usdt, operator)
        made.rpc("anvil_setBalance", operator.address, hex(10**20))  # the operator's gas
        # Liquidity moved into the vault (no deposit event: nobody is credited).
        mint = usdt.functions.mint(vault.address, 100_000 * 10**DECIMALS).transact({"from": admin})
        assert w3.eth.wait_for_transaction_receipt(mint)["status"] == 1
        yield made
    finally:
        node.stop()


@pytest.fixture(scope="module")
async def pay_server(
    backend: dict[str, Any], tmp_path_factory: pytest.TempPathFactory, chain: Chain
) -> AsyncIterator[Server]:
    ethereum = {
        "rpc_url": chain.url,
        "vault": chain.vault.address,
        "usdt": chain.usdt.address,
        "usdt_decimals": DECIMALS,
        "confirmations": CONFIRMATIONS,
        "withdrawals": {"USDT": LIMITS},
    }
    chains = {
        "evm": {"ethereum": ethereum},
        "poll_seconds": 0.2,  # payouts pass this often: the test need not wait
        "operator_key": "0x" + bytes(chain.operator.key).hex(),
    }
    tmp = tmp_path_factory.mktemp("app")
    async with own_server(backend, tmp, "wallet-withdraw", chains=chains) as running:
        yield running


async def api(page: Page, path: str, body: dict[str, Any] | None = None) -> Any:
    """A call as the page's user (its session), from the page."""
    return await page.evaluate(
        "([path, body]) => window.SimplRefQ.api(path, body ? {method: 'POST', body} : {})",
        [path, body],
    )


async def shown_balance(page: Page, text: str) -> None:
    await page.wait_for_selector(
        f"#wlt-balances [data-asset='USDT'] .wlt-num:text-is('{text}')", timeout=10_000
    )


async def note(page: Page) -> str:
    return await page.inner_text("#wlt-wd-note")


async def test_withdraw_signed_by_the_wallet_is_paid_on_chain_and_shown_live(
    browser: Browser, pay_server: Server, chain: Chain, screenshots: Path
) -> None:
    wallet: LocalAccount = Account.create()
    signed: list[dict[str, Any]] = []

    def sign_typed(address: str, payload: str) -> str:
        assert address.lower() == wallet.address.lower()
        typed = json.loads(payload)
        signed.append(typed)
        return sign(wallet, typed)

    page, errors = await open_page(browser, telegram_stub=None)
    history_reads: list[str] = []
    page.on(
        "request",
        lambda r: (
            history_reads.append(r.url)
            if r.method == "GET" and r.url.endswith("/api/withdrawals")
            else None
        ),
    )
    await page.expose_function("signTyped", sign_typed)
    await page.add_init_script(f"window.__ethAddress = {wallet.address!r};" + FAKE_PROVIDER)
    await page.goto(pay_server.url + "/#wallet")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    await page.wait_for_selector("#wallet[data-state='ready']", timeout=10_000)
    await api(page, "/api/faucet", {})
    await shown_balance(page, "10000.00")  # live, from the balance events

    # The form: the one chain that pays, USDT and ETH, the connected wallet filled in.
    await page.wait_for_selector("#wallet[data-withdraw='open']")
    chains = {c["chain"]: c for c in await api(page, "/api/chains")}
    assert chains["ethereum"]["withdrawals_open"] and not chains["bnb"]["withdrawals_open"]
    assert chains["ethereum"]["assets"][0]["withdrawals"] == LIMITS
    assert await page.inner_text("#wlt-wd-chains") == "Ethereum"
    assert await page.inner_text("#wlt-wd-assets") == "USDT\nETH"
    assert await page.get_attribute("#wlt-wd-assets [data-asset='USDT']", "aria-pressed") == "true"
    assert await page.input_value("#wlt-wd-address") == wallet.address
    assert await page.inner_text("#wlt-wd-available") == "10000 USDT available"
    await page.click("#wlt-wd-max")
    assert await page.input_value("#wlt-wd-amount") == "10000"
    summary = await page.inner_text("#wlt-wd-summary")
    assert "Fee\n1 USDT" in summary and "You receive\n9999 USDT" in summary
    assert "10 – 20000 USDT" in summary and "Above 100 USDT" in summary

    # More than the balance: refused in words; the wallet is not asked and nothing moves.
    await page.fill("#wlt-wd-amount", "15000")
    await page.click("#wlt-wd-submit")
    await page.wait_for_selector("#wlt-wd-note[data-tone='error']")
    assert await note(page) == "Not enough USDT: 10000 USDT available."
    assert await page.get_attribute("#wlt-wd-amount", "aria-invalid") == "true"
    assert "eth_signTypedData_v4" not in await page.evaluate("window.__eth.calls")
    assert await api(page, "/api/withdrawals") == []
    await shown_balance(page, "10000.00")

    # 25 USDT: quoted, signed by the wallet (the button disabled meanwhile), requested.
    await page.fill("#wlt-wd-amount", "25")
    assert "You receive\n24 USDT" in await page.inner_text("#wlt-wd-summary")
    await page.click("#wlt-wd-submit")
    await page.wait_for_selector("#wlt-withdrawals [data-withdrawal]", timeout=10_000)
    assert "is on its way" in await note(page)
    assert await page.evaluate("window.__eth.busy") == [True]
    (quoted,) = await page.evaluate("window.__eth.summaries")
    assert "You receive\n24 USDT" in quoted and "Approval\nNot needed" in quoted
    assert await page.is_enabled("#wlt-wd-submit")
    (typed,) = signed
    assert typed["primaryType"] == "Withdrawal"
    assert typed["domain"]["chainId"] in (1, "1")
    assert typed["domain"]["verifyingContract"] == chain.vault.address
    assert int(typed["message"]["amount"]) == 24 * 10**DECIMALS
    await shown_balance(page, "9975.00")
    # Payouts send it (anvil mines it at once); confirmations come with the blocks mined here.
    await page.wait_for_selector("#wlt-withdrawals [data-status='sent']", timeout=15_000)
    row = page.locator("#wlt-withdrawals [data-withdrawal]")
    assert "Sending" in await row.inner_text()
    assert re.search(
        rf"confirming: [0-{CONFIRMATIONS}]/{CONFIRMATIONS} blocks", await row.inner_text()
    )
    assert await row.locator("[data-cancel]").count() == 0
    chain.rpc("anvil_mine", hex(CONFIRMATIONS))
    await page.wait_for_selector("#wlt-withdrawals [data-status='confirmed']", timeout=15_000)
    (paid,) = await api(page, "/api/withdrawals")
    assert paid["confirmations"] >= paid["required"] == CONFIRMATIONS
    assert paid["status"] == "confirmed" and paid["receive"] == "24"
    assert chain.usdt_of(wallet.address) == 24 * 10**DECIMALS
    text = await row.inner_text()
    assert "25 USDT" in text and "Confirmed" in text and "arrived" in text
    link = row.locator("a.wlt-tx")
    assert await link.get_attribute("href") == f"https://etherscan.io/tx/{paid['tx_hash']}"
    await shown_balance(page, "9975.00")
    await page.screenshot(path=str(screenshots / "wallet-withdrawn.png"), full_page=True)

    # Another receiving wallet than the connected one: it could not sign, so it is not asked.
    other: LocalAccount = Account.create()
    await page.fill("#wlt-wd-address", other.address)
    await page.fill("#wlt-wd-amount", "20")
    await page.click("#wlt-wd-submit")
    await page.wait_for_selector("#wlt-wd-note:has-text('Only the receiving wallet can sign')")
    assert await page.get_attribute("#wlt-wd-address", "aria-invalid") == "true"
    assert len(signed) == 1 and len(await api(page, "/api/withdrawals")) == 1
    # Not an address at all: the server's refusal (400 invalid_address), in words.
    await page.fill("#wlt-wd-address", "0x1234")
    await page.click("#wlt-wd-submit")
    await page.wait_for_selector("#wlt-wd-note:has-text('not an EVM address')")
    assert await note(page) == (
        "That is not an EVM address: 0x and 40 hex digits (check their upper and lower case)."
    )
    assert len(signed) == 1 and len(await api(page, "/api/withdrawals")) == 1

    # Above the approval threshold: it waits for an admin, and Cancel brings the amount back.
    await page.fill("#wlt-wd-address", wallet.address)
    await page.fill("#wlt-wd-amount", "500")
    await page.click("#wlt-wd-submit")
    await page.wait_for_selector(
        "#wlt-withdrawals [data-status='pending_approval']", timeout=10_000
    )
    quoted = (await page.evaluate("window.__eth.summaries"))[-1]
    assert "Approval\nNeeded: an admin approves it first" in quoted
    assert "waits for an admin's approval" in await note(page)
    waiting = page.locator("#wlt-withdrawals [data-status='pending_approval']")
    assert "Awaiting approval" in await waiting.inner_text()
    await shown_balance(page, "9475.00")
    await page.screenshot(path=str(screenshots / "wallet-withdraw-pending.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    await waiting.locator("[data-cancel]").click()
    cancelled = page.locator("#wlt-withdrawals [data-status='cancelled']")
    await cancelled.wait_for(timeout=10_000)
    await page.wait_for_selector(
        "#wlt-withdrawals [data-status='cancelled']:has-text('Amount returned')", timeout=15_000
    )
    await shown_balance(page, "9975.00")
    assert [(w["status"], w["refunded"]) for w in await api(page, "/api/withdrawals")] == [
        ("cancelled", True),
        ("confirmed", False),
    ]
    assert chain.usdt_of(wallet.address) == 24 * 10**DECIMALS  # nothing more was paid

    # Live from the hub, not polled: once the last event's re-read is in, with nothing
    # happening, the list is not read again.
    await page.wait_for_timeout(1_000)
    reads = len(history_reads)
    await page.wait_for_timeout(2_000)
    assert len(history_reads) == reads
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    assert errors == []
    await page.close()


async def test_without_a_wallet_the_form_says_to_connect_one(
    browser: Browser, pay_server: Server
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await page.goto(pay_server.url + "/#wallet")
    await page.wait_for_selector("#wallet[data-state='ready']", timeout=10_000)
    await page.wait_for_selector("#wallet[data-withdraw='open']")
    await api(page, "/api/faucet", {})
    await shown_balance(page, "10000.00")
    assert "Connect an EVM wallet to withdraw" in await note(page)
    assert await page.input_value("#wlt-wd-address") == ""
    await page.fill("#wlt-wd-amount", "25")
    await page.click("#wlt-wd-submit")
    assert "Connect an EVM wallet to withdraw" in await note(page)
    assert await api(page, "/api/withdrawals") == []
    assert errors == []
    await page.close()
