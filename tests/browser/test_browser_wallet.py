"""The Wallet tab in real headless Chromium, against the served wallet, deposit and balance API.

The embedded demo server has no deposit vault, so the deposit section must say deposits are not
open. Wallets are linked for the page's own user: through the API from the page (a SIWE
message and a ton_proof signed with test keys, tests/wallet_helpers.py), and end to end through
the tab's "Connect EVM wallet" with a fake EIP-1193 provider whose personal_sign calls back into
Python, which signs with eth-account.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from backend.chains.deposit_models import ChainCursor, ChainDeposit
from backend.db.uow import unit_of_work
from tests.helpers import Server, open_page
from tests.signals_helpers import own_server
from tests.wallet_helpers import EthWallet, TonWallet, siwe_text

pytestmark = pytest.mark.browser

# The fake wallet the page finds at window.ethereum: accounts and chain from here, signatures
# from Python (window.signSiwe, exposed by the test).
FAKE_PROVIDER = """
window.__eth = {calls: []};
window.ethereum = {
  async request({method, params}) {
    window.__eth.calls.push(method);
    if (method === "eth_requestAccounts" || method === "eth_accounts") return [window.__ethAddress];
    if (method === "eth_chainId") return "0x1";
    if (method === "personal_sign") return window.signSiwe(params[0], params[1]);
    throw Object.assign(new Error("unsupported " + method), {code: 4200});
  },
};
"""


# A vault on Ethereum and no node: deposits are open there (the address is computed off-chain)
# and nothing is watched, so the test writes the deposit and the scan cursor itself.
VAULT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
USDT = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
TX = "0x" + "ab" * 32


@pytest.fixture(scope="module")
async def vault_server(
    backend: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    chains = {"evm": {"ethereum": {"vault": VAULT, "usdt": USDT}}}
    tmp = tmp_path_factory.mktemp("app")
    async with own_server(backend, tmp, "wallet-browser", chains=chains) as running:
        yield running


async def open_wallet_tab(page: Page, server: Server) -> None:
    await page.goto(server.url + "/#wallet")
    await page.wait_for_selector("body[data-auth='ready']", timeout=10_000)
    await page.wait_for_selector("#wallet[data-state='ready']", timeout=10_000)


async def api(page: Page, path: str, body: dict[str, Any] | None = None) -> Any:
    """A call as the page's user (its session), from the page."""
    return await page.evaluate(
        "([path, body]) => window.SimplRefQ.api(path, body ? {method: 'POST', body} : {})",
        [path, body],
    )


async def no_horizontal_scroll(page: Page) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360


async def test_the_tab_shows_balances_and_deposits_not_open_in_the_demo(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await open_wallet_tab(page, server)
    await api(page, "/api/faucet", {})
    balances = await api(page, "/api/balances")
    assert balances, "the demo user has balances"
    await page.reload()
    await page.wait_for_selector("#wallet[data-state='ready']", timeout=10_000)
    for balance in balances:
        assert await page.is_visible(f"#wlt-balances [data-asset='{balance['asset']}']")
    chains = await api(page, "/api/chains")
    assert chains and not any(chain["open"] for chain in chains)
    # No vault in the demo: the first chain says so, and so does the other one when picked.
    await page.wait_for_selector("#wallet[data-deposit='closed']")
    title = await page.inner_text("#wlt-deposit-closed-title")
    assert title == "Deposits on Ethereum are not open yet"
    assert not await page.is_visible("#wlt-deposit")
    await page.click("#wlt-chains [data-chain='bnb']")
    await page.wait_for_selector("#wlt-deposit-closed-title:has-text('BNB Chain')")
    assert await page.inner_text("#wlt-history") == "No deposits yet."
    assert await page.is_visible("#wlt-wallets-empty")
    # No chain pays withdrawals in the demo: no form, and the section says so.
    await page.wait_for_selector("#wallet[data-withdraw='closed']")
    assert not await page.is_visible("#wlt-withdraw")
    assert await page.is_visible("#wlt-withdraw-closed")
    assert await page.inner_text("#wlt-withdrawals") == "No withdrawals yet."
    # No provider in this browser: the EVM button explains how to link instead.
    await page.click("#wlt-connect-evm")
    assert "wallet's built-in browser" in await page.inner_text("#wlt-link-note")
    await no_horizontal_scroll(page)
    await page.screenshot(path=str(screenshots / "wallet-demo.png"), full_page=True)
    assert errors == []
    await page.close()


async def test_linked_wallets_are_listed_and_unlinked(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await open_wallet_tab(page, server)
    eth = EthWallet()
    challenge = await api(page, "/api/wallets/challenge", {"kind": "siwe"})
    text = siwe_text(
        eth.address,
        challenge["challenge"],
        datetime.now(UTC),
        domain=challenge["domain"],
        uri=challenge["uri"],
    )
    linked = await api(page, "/api/wallets/link", eth.body(text))
    ton = TonWallet()
    challenge = await api(page, "/api/wallets/challenge", {"kind": "ton_proof"})
    body = ton.body(challenge["challenge"], int(time.time()), domain=challenge["domain"])
    await api(page, "/api/wallets/link", body)

    await page.reload()
    await page.wait_for_selector("#wallet[data-wallets='2']", timeout=10_000)
    rows = page.locator("#wlt-wallets .wlt-wallet")
    assert await rows.count() == 2
    text_of_rows = await page.inner_text("#wlt-wallets")
    assert "EVM" in text_of_rows and "TON" in text_of_rows
    assert eth.address[:6] in text_of_rows and eth.address[-4:] in text_of_rows
    assert "Linked " in text_of_rows
    assert not await page.is_visible("#wlt-wallets-empty")
    await no_horizontal_scroll(page)
    await page.screenshot(path=str(screenshots / "wallet-linked.png"), full_page=True)

    # Unlink asks first: a refusal keeps the wallet, a yes removes it.
    page.once("dialog", lambda dialog: dialog.dismiss())
    await page.click(f"#wlt-wallets [data-unlink='{linked['id']}']")
    await page.wait_for_timeout(300)
    assert await rows.count() == 2
    page.once("dialog", lambda dialog: dialog.accept())
    await page.click(f"#wlt-wallets [data-unlink='{linked['id']}']")
    await page.wait_for_selector("#wallet[data-wallets='1']")
    assert eth.address[-4:] not in await page.inner_text("#wlt-wallets")
    assert [w["kind"] for w in await api(page, "/api/wallets")] == ["ton_proof"]
    assert errors == []
    await page.close()


async def test_connect_evm_wallet_links_it_end_to_end(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    eth = EthWallet()
    signed: list[str] = []
    page, errors = await open_page(browser, telegram_stub=None)

    def sign(message_hex: str, address: str) -> str:
        assert address == eth.address
        text = bytes.fromhex(message_hex.removeprefix("0x")).decode()
        signed.append(text)
        return eth.sign(text)

    await page.expose_function("signSiwe", sign)
    await page.add_init_script(f"window.__ethAddress = {eth.address!r};" + FAKE_PROVIDER)
    await open_wallet_tab(page, server)
    await page.click("#wlt-connect-evm")
    await page.wait_for_selector("#wallet[data-wallets='1']", timeout=10_000)
    assert "Linked EVM wallet" in await page.inner_text("#wlt-link-note")
    (wallet,) = await api(page, "/api/wallets")
    assert wallet["kind"] == "siwe" and wallet["address"] == eth.address
    (message,) = signed
    lines = message.split("\n")
    assert lines[1] == eth.address and "Chain ID: 1" in lines and "Version: 1" in lines
    assert await page.evaluate("window.__eth.calls") == [
        "eth_requestAccounts",
        "eth_chainId",
        "personal_sign",
    ]
    await no_horizontal_scroll(page)
    await page.screenshot(path=str(screenshots / "wallet-evm-linked.png"), full_page=True)
    assert errors == []
    await page.close()


async def test_an_open_chain_shows_the_address_with_its_qr_code_and_the_history(
    browser: Browser, vault_server: Server, screenshots: Path
) -> None:
    page, errors = await open_page(browser, telegram_stub=None)
    await open_wallet_tab(page, vault_server)
    user_id = await page.evaluate("window.SimplRefQ.user().id")
    async with unit_of_work(vault_server.app.state.resources.db) as uow:
        uow.session.add(
            ChainDeposit(
                chain="ethereum",
                tx_hash=TX,
                log_index=0,
                user_id=user_id,
                asset="USDT",
                amount=25_000_000,
                raw_amount="25000000",
                sender="0x" + "11" * 20,
                block_number=100,
                block_hash="0x" + "cd" * 32,
                status="seen",
            )
        )
        uow.session.add(
            ChainCursor(chain="ethereum", block_number=104, block_hash="0x" + "ef" * 32)
        )
    await page.reload()
    await page.wait_for_selector("#wallet[data-deposit='open']", timeout=10_000)
    view = await api(page, "/api/deposits/address?chain=ethereum&asset=USDT")
    assert await page.inner_text("#wlt-address") == view["address"]
    await page.wait_for_selector("#wlt-qr svg path")
    assert await page.get_attribute("#wlt-qr", "data-text") == view["address"]
    rules = await page.inner_text("#wlt-deposit-rules")
    assert "Minimum 1 USDT" in rules and "12 confirmations" in rules
    history = await page.inner_text("#wlt-history")
    assert "USDT" in history and "5/12" in history and "Confirming" in history
    link = page.locator("#wlt-history a.wlt-tx")
    assert await link.get_attribute("href") == f"https://etherscan.io/tx/{TX}"
    # BNB Chain has no vault on this server.
    await page.click("#wlt-chains [data-chain='bnb']")
    await page.wait_for_selector("#wallet[data-deposit='closed']")
    await page.click("#wlt-chains [data-chain='ethereum']")
    await page.wait_for_selector("#wallet[data-deposit='open']")
    await no_horizontal_scroll(page)
    await page.screenshot(path=str(screenshots / "wallet-deposit-open.png"), full_page=True)
    assert errors == []
    await page.close()


# Stands in for the vendored TON Connect UI (TON_CONNECT_UI, which the tab would fetch on the
# first click): "opening the modal" asks Python's test wallet for the ton_proof of the payload
# the tab set, and reports the wallet connected, as TON Connect does once a wallet approved.
FAKE_TON_CONNECT = """
window.__ton = {calls: []};
window.TON_CONNECT_UI = {TonConnectUI: class {
  constructor(options) { window.__ton.manifestUrl = options.manifestUrl; this.connected = false; }
  onStatusChange(callback) { this.status = callback; }
  onModalStateChange(callback) { this.modal = callback; }
  setConnectRequestParameters(parameters) { window.__ton.parameters = parameters; }
  async openModal() {
    window.__ton.calls.push("openModal");
    const wallet = await window.tonWallet(window.__ton.parameters.value.tonProof);
    this.connected = true;
    this.modal?.({status: "closed", closeReason: "wallet-selected"});
    this.status(wallet);
  }
  async disconnect() { this.connected = false; window.__ton.calls.push("disconnect"); }
}};
"""


async def test_connect_ton_wallet_forwards_the_proof_to_the_server(
    browser: Browser, server: Server
) -> None:
    ton = TonWallet()
    page, errors = await open_page(browser, telegram_stub=None)

    def wallet_reply(payload: str) -> dict[str, Any]:
        """TON Connect's Wallet object for a wallet that signed the ton_proof."""
        body = ton.body(payload, int(time.time()))
        return {
            "account": {
                "address": body["address"],
                "chain": "-239",
                "publicKey": body["public_key"],
                "walletStateInit": body["state_init"],
            },
            "connectItems": {"tonProof": {"name": "ton_proof", "proof": body["proof"]}},
        }

    await page.expose_function("tonWallet", wallet_reply)
    await page.add_init_script(FAKE_TON_CONNECT)
    await open_wallet_tab(page, server)
    await page.click("#wlt-connect-ton")
    await page.wait_for_selector("#wallet[data-wallets='1']", timeout=10_000)
    assert "Linked TON wallet" in await page.inner_text("#wlt-link-note")
    (wallet,) = await api(page, "/api/wallets")
    assert wallet["kind"] == "ton_proof" and wallet["address"] == ton.raw
    manifest = await page.evaluate("window.__ton.manifestUrl")
    assert manifest == server.url + "/tonconnect-manifest.json"
    async with server.client() as http:
        served = (await http.get("/tonconnect-manifest.json")).json()
    assert served["url"] == server.settings.app.base_url
    assert served["iconUrl"] == f"{served['url']}/static/tonconnect-icon.png"
    # The page keeps no TON Connect session once the proof is in.
    assert await page.evaluate("window.__ton.calls") == ["openModal", "disconnect"]
    assert errors == []
    await page.close()


async def test_the_real_ton_connect_ui_loads_on_first_click_and_says_when_it_is_blocked(
    browser: Browser, server: Server
) -> None:
    """The vendored library is fetched only on the click. The page's Content-Security-Policy
    refuses its inline styles and its calls to TON's hosts (and this machine has no internet),
    so the button must say linking is unavailable rather than wait forever."""
    page, _ = await open_page(browser, telegram_stub=None)
    await open_wallet_tab(page, server)
    assert await page.evaluate("typeof window.TON_CONNECT_UI") == "undefined"
    await page.click("#wlt-connect-ton")
    await page.wait_for_selector("#wlt-link-note[data-tone='error']", timeout=10_000)
    assert await page.evaluate("typeof window.TON_CONNECT_UI.TonConnectUI") == "function"
    assert "not available" in await page.inner_text("#wlt-link-note")
    assert await page.is_enabled("#wlt-connect-ton")
    await page.close()
