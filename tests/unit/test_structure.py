"""The direction of imports, checked on the source so a new upward import fails the build.

Modules fall in four kinds, lowest first:

- foundation: settings, time, errors, the database, the hub's core (like the database, a
  piece of infrastructure every capability may publish through);
- services: each capability's domain and service modules, the capabilities ranked in
  ``CAPABILITIES`` so that one may use those before it and never those after it;
- edges: the transports (Litestar controllers and middleware, the WebSocket routes, the bot's
  handlers), which may use every service but not each other's modules, apart from the shared
  HTTP helpers in ``EDGE_HELPERS`` and the request and response shapes (``schemas``);
- composition: the few modules that build and wire everything, which may import anything.

Nothing imports a composition module except another composition module, nothing reaches into
another capability's storage (its ``store`` package), and only edges (and the composition)
import the web framework.  ``backend.testing``, the support code of the tests and the benchmarks,
counts as composition, and no module outside it imports it at all.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = ("backend", "bot")

FOUNDATION = (
    "backend.__init__",
    "backend.clock",
    "backend.config",
    "backend.errors",
    "backend.i18n",
    "backend.db",  # but not its migrations: they know every capability's tables
    "backend.hub.__init__",
    "backend.hub.backends",
    "backend.hub.frames",
    "backend.hub.hub",
    "backend.hub.protocol",
    "backend.hub.subscriber",
    "backend.hub.topics",
    "backend.ops.__init__",
)
# Lowest first: a capability's services may import the services of those before it.
CAPABILITIES = (
    "audit",
    "users",
    "notify",
    "auth",
    "ledger",
    "market",
    "trading",
    "points",
    "chains",
    "alerts",
    "signals",
    "account",
)
COMPOSITION = (
    "backend.app",
    "backend.asgi",
    "backend.cli",
    "backend.chains.devnet",  # the demo's chains: it starts nodes and deploys, for the CLI only
    "backend.resources",
    "backend.testing",  # support for the tests and benches: production code never imports it
    "backend.db.migrations",
    "bot.runtime",
    "bot.__main__",
)
EDGE_HELPERS = (
    "backend.deps",
    "backend.http",
    "backend.inputs",
    "backend.openapi",
    "backend.auth.csrf",
    "backend.auth.guards",
    "backend.auth.ratelimit",
    "backend.auth.sessions",
    "backend.ops.logging",
    "backend.ops.metrics",
)
EDGE_MODULES = (
    "controllers",
    "routes",
    "schemas",
    "backend.hub.auth",
    "backend.hub.connection",
    "backend.hub.controllers",
    "backend.hub.html",
    "backend.hub.wire",
    "backend.ops.health",
    "backend.web",
    "bot",
)
# Support code for the tests and the benchmarks (a fake Bot API, a test signing key): it may
# import anything, and nothing outside it may import it.
TEST_SUPPORT = "backend.testing"
# aiogram is also the Telegram client the notifier sends with, so only Litestar is an edge's.
WEB_FRAMEWORKS = ("litestar",)


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@dataclass(frozen=True, slots=True)
class Kind:
    layer: int  # 0 foundation, 1 service, 2 edge, 3 composition
    rank: int = 0  # a service's capability

    @property
    def label(self) -> str:
        return ("foundation", "service", "edge", "composition")[self.layer]


def kind_of(module: str) -> Kind:
    if module in ("backend", "backend.hub", "backend.ops"):
        module += ".__init__"  # the package itself, not everything in it
    if any(within(module, m) for m in COMPOSITION):
        return Kind(3)
    last = module.rsplit(".", 1)[-1]
    if any(within(module, m) for m in EDGE_HELPERS + EDGE_MODULES) or last in EDGE_MODULES:
        return Kind(2)
    if last.endswith("_routes"):
        return Kind(2)
    if any(within(module, m) for m in FOUNDATION):
        return Kind(0)
    parts = module.split(".")
    if parts[0] == "backend" and len(parts) > 1 and parts[1] in CAPABILITIES:
        return Kind(1, CAPABILITIES.index(parts[1]))
    raise AssertionError(f"{module} has no place in tests/test_structure.py's layers")


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: pathlib.Path, module: str) -> Iterator[tuple[int, str]]:
    """Every module this file imports, wherever the import statement stands."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def source_modules(root: pathlib.Path = ROOT) -> dict[str, pathlib.Path]:
    found = {}
    for top in SOURCES:
        for path in sorted((root / top).rglob("*.py")):
            if "versions" in path.parts:  # migration scripts are history, not code
                continue
            found[module_name(path)] = path
    return found


def graph(modules: dict[str, pathlib.Path]) -> dict[str, dict[str, int]]:
    """module -> {imported project module: line}."""
    edges: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        targets: dict[str, int] = {}
        for line, target in imports(path, module):
            if target in modules and target != module:
                targets.setdefault(target, line)
        edges[module] = targets
    return edges


def shown(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def capability(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "backend" else parts[0]


def violations(modules: dict[str, pathlib.Path]) -> list[str]:
    found = []
    for module, targets in graph(modules).items():
        source = kind_of(module)
        for target, line in targets.items():
            dest = kind_of(target)
            where = f"{shown(modules[module])}:{line}: {module} imports {target}"
            if dest.layer == 3 and source.layer != 3:
                found.append(f"{where} (the composition root)")
            elif source.layer == 0 and dest.layer > 0:
                found.append(f"{where} ({dest.label} from foundation)")
            elif source.layer == 1 and dest.layer == 2:
                found.append(f"{where} (an edge from a service)")
            elif source.layer == 1 and dest.layer == 1 and dest.rank > source.rank:
                found.append(f"{where} (a later capability)")
            elif ".store" in target and capability(module) != capability(target):
                found.append(f"{where} (another capability's storage)")
            elif (
                source.layer == 2
                and dest.layer == 2
                and capability(module) != capability(target)
                and not any(within(target, m) for m in EDGE_HELPERS)
                and not target.endswith(".schemas")
            ):
                found.append(f"{where} (another capability's edge)")
    return found


def cycles(modules: dict[str, pathlib.Path]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    edges = graph(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def framework_imports(modules: dict[str, pathlib.Path]) -> list[str]:
    found = []
    for module, path in modules.items():
        if kind_of(module).layer >= 2:
            continue
        for line, target in imports(path, module):
            if target.split(".")[0] in WEB_FRAMEWORKS:
                found.append(f"{shown(path)}:{line}: {module} imports {target}")
                break
    return found


def support_imports(modules: dict[str, pathlib.Path]) -> list[str]:
    """Imports of ``backend.testing`` from outside it, the composition root included."""
    found = []
    for module, path in modules.items():
        if within(module, TEST_SUPPORT):
            continue
        for line, target in imports(path, module):
            if within(target, TEST_SUPPORT):
                found.append(f"{shown(path)}:{line}: {module} imports {target}")
                break
    return found


def test_no_import_points_up() -> None:
    assert violations(source_modules()) == []


def test_no_module_cycle() -> None:
    assert cycles(source_modules()) == []


def test_only_edges_know_the_web_frameworks() -> None:
    assert framework_imports(source_modules()) == []


def test_production_code_never_imports_the_test_support() -> None:
    assert support_imports(source_modules()) == []


def test_nothing_below_the_app_reads_the_app_state() -> None:
    readers = [
        f"{path.relative_to(ROOT)}"
        for module, path in source_modules().items()
        if kind_of(module).layer != 3 and "app.state" in path.read_text()
    ]
    assert readers == []


@pytest.mark.parametrize(
    ("module", "planted"),
    [
        ("backend.ledger.domain", "from backend.trading.service import Trading"),
        ("backend.errors", "import litestar"),
        ("backend.trading.desk", "from backend.trading.controllers import router"),
        ("backend.points.service", "from backend.resources import Resources"),
        ("backend.points.queries", "from backend.ledger.store.base import balance_from"),
    ],
)
def test_a_planted_upward_import_is_caught(
    tmp_path: pathlib.Path, module: str, planted: str
) -> None:
    modules = source_modules()
    copy = tmp_path / modules[module].relative_to(ROOT)
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(modules[module].read_text() + f"\n{planted}\n")
    modules[module] = copy
    found = violations(modules) + framework_imports(modules)
    assert any(module in line and planted.split()[1] in line for line in found), found


def test_a_planted_import_of_the_test_support_is_caught(tmp_path: pathlib.Path) -> None:
    modules = source_modules()
    copy = tmp_path / "cli.py"
    planted = "from backend.testing.telegram import BOT_TOKEN"
    copy.write_text(modules["backend.cli"].read_text() + f"\n{planted}\n")
    modules["backend.cli"] = copy
    found = support_imports(modules)
    assert any("backend.cli imports backend.testing.telegram" in line for line in found), found


def test_a_planted_cycle_is_caught(tmp_path: pathlib.Path) -> None:
    modules = source_modules()
    for module, planted in (
        ("backend.clock", "from backend.config import Settings"),
        ("backend.config", "from backend.clock import utcnow"),
    ):
        copy = tmp_path / f"{module}.py"
        copy.write_text(modules[module].read_text() + f"\n{planted}\n")
        modules[module] = copy
    assert ["backend.clock", "backend.config"] in cycles(modules)
