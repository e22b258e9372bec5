"""A local EVM chain: anvil (Foundry's node), from the npm package ``@foundry-rs/anvil`` that
``npm ci --prefix contracts/evm`` installs, on a free loopback port.  The tests and benchmarks
start throwaway ones; the embedded demo starts two that keep their state (``devnet.py``)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_NODE_MODULES = Path(__file__).resolve().parents[2] / "contracts" / "evm" / "node_modules"
# A cold start takes about 0.1 s; the margin covers a loaded CI machine (and a large state file).
_START_TIMEOUT_S = 15.0
# A port found free can be taken before anvil binds it; a few tries make that harmless.
_START_ATTEMPTS = 3
# anvil writes its state file as it exits; a demo's day of blocks is a few megabytes.
_STOP_TIMEOUT_S = 10.0
# With a state file, anvil also writes it this often: a node killed outright loses at most this
# many seconds of the chain.
_STATE_INTERVAL_S = 10


class AnvilUnavailableError(RuntimeError):
    """No anvil binary: run ``npm ci --prefix contracts/evm``."""


def find_anvil() -> Path | None:
    """The binary the npm package ships (in its platform package), else one on PATH."""
    for candidate in sorted(_NODE_MODULES.glob("@foundry-rs/anvil-*/bin/anvil")):
        if candidate.is_file():
            return candidate
    found = shutil.which("anvil")
    return Path(found) if found else None


@dataclass
class Anvil:
    """A running anvil: its JSON-RPC URL, its chain id, and its process."""

    url: str
    chain_id: int
    process: subprocess.Popen[bytes]
    # stderr goes to a file, not a pipe: a pipe nobody reads would stall a long-lived node.
    log: IO[bytes]

    def stop(self) -> None:
        """SIGTERM, which anvil answers by writing its state file (if it has one) and exiting."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def errors(self) -> str:
        """What the node wrote to stderr so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _rpc_chain_id(url: str) -> int | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(  # noqa: S310  # a loopback http URL we built
        url, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:  # noqa: S310
            return int(json.load(response)["result"], 16)
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return None


def start_anvil(
    chain_id: int,
    *,
    hardfork: str = "cancun",
    binary: Path | None = None,
    state: Path | None = None,
    block_time: int | None = None,
) -> Anvil:
    """Starts anvil with this chain id on a free port and returns once it answers JSON-RPC.

    The hardfork defaults to the contracts' compile target (``evmVersion`` in compile.mjs).
    ``state``: a file the chain is loaded from if it exists and written to on exit and every
    few seconds, blocks and logs included, so the chain goes on where it stopped.
    ``block_time``: mine a block every so many seconds, so confirmations advance by themselves;
    otherwise a block is mined for each transaction and nothing else.
    """
    executable = binary or find_anvil()
    if executable is None:
        raise AnvilUnavailableError("anvil not found: run npm ci --prefix contracts/evm")
    options = ["--chain-id", str(chain_id), "--hardfork", hardfork, "--silent"]
    if state is not None:
        options += ["--state", str(state), "--state-interval", str(_STATE_INTERVAL_S)]
    if block_time is not None:
        options += ["--block-time", str(block_time)]
    for _ in range(_START_ATTEMPTS):
        port = _free_port()
        log = tempfile.TemporaryFile()  # noqa: SIM115  # closed by Anvil.stop
        process = subprocess.Popen(  # noqa: S603  # our own binary, fixed arguments
            [str(executable), "--host", "127.0.0.1", "--port", str(port), *options],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        anvil = Anvil(url=f"http://127.0.0.1:{port}", chain_id=chain_id, process=process, log=log)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if _rpc_chain_id(anvil.url) == chain_id:
                return anvil
            time.sleep(0.05)
        error = anvil.errors()
        anvil.stop()
        if "in use" not in error:
            raise RuntimeError(f"anvil did not start on {anvil.url}: {error.strip()[-500:]}")
    raise RuntimeError(f"anvil found no free port in {_START_ATTEMPTS} tries")
