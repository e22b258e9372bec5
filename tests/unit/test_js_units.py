"""The front end's own tests (tests/js/*.test.mjs), run by Node's built-in runner.

They cover the exact-decimal module the order form uses and the page's module graph: every
module parses, every import names what it takes and carries its file's current hash (see
tests/js/stamp.mjs for why imports are versioned). Node is the only tool they need.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JS_TESTS = sorted((ROOT / "tests" / "js").glob("*.test.mjs"))
# Node's runner starts a process per file; a few seconds in all, so a minute means it hangs.
TIMEOUT_S = 60


def test_js_units_pass_under_node() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JS unit tests (tests/js) need Node 20 or later")
    assert JS_TESTS, "no tests/js/*.test.mjs files"
    result = subprocess.run(
        [node, "--test", "--test-reporter=tap", *map(str, JS_TESTS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    counts = {
        key: int(value) for key, value in re.findall(r"^# (tests|pass|fail) (\d+)$", output, re.M)
    }
    assert result.returncode == 0, output
    assert counts.get("tests", 0) > 0, f"node ran no JS tests:\n{output}"
    assert counts.get("fail", 0) == 0, output
    assert counts.get("pass") == counts["tests"], output
