"""The import graph has layers, and no import runs back up one:

0. evals/metrics.py: statistics; it imports no project code.
1. agent/ (the core: items, tasks, pipeline, the log, review logic, the rule in agent/calibration/).
   Only agent/store/ runs SQL: every statement lives there, the review app's in agent/store/review/.
2. evals/ (the product that measures labels: `labelagent eval`, its report and plots).
3. The edges: agent/cli.py, review_ui/ and the benchmarks in evals/benchmarks/.
"""

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the repository's folders and the names they install under (pyproject.toml's package-dir)
PACKAGES = {"agent": "labelagent", "evals": "labelagent.evals", "review_ui": "labelagent.review_ui"}
EDGES = ("labelagent.cli", "labelagent.review_ui", "labelagent.evals.benchmarks")
RUNS_SQL = {"execute", "executemany", "sql"}
STATEMENT = re.compile(
    r"\s*\(?\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|WITH|DROP|ALTER|COPY|PRAGMA|ATTACH)\b"
)


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def layer(module: str) -> int:
    if module == "labelagent.evals.metrics":
        return 0
    if any(within(module, edge) for edge in EDGES):
        return 3
    return 2 if within(module, "labelagent.evals") else 1


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            name = ".".join((package, *path.relative_to(ROOT / folder).with_suffix("").parts))
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path], top_level_only: bool) -> set[str]:
    """The project modules `path` imports (`from a.b import c` names a.b.c when it is one)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def test_no_import_runs_back_up_a_layer():
    known = modules()
    upward = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, path in known.items()
        for target in imports(path, known, top_level_only=False)
        if layer(target) > layer(module)
    ]
    assert upward == []


def test_no_module_imports_itself_back_when_loaded():
    known = modules()
    graph = {
        module: imports(path, known, top_level_only=True) - {module}
        for module, path in known.items()
    }
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as cycle:
        pytest.fail(f"import cycle: {' -> '.join(cycle.args[1])}")


def sql_in(source: str) -> set[str]:
    """Where the code runs SQL (`.execute(`, `.executemany(`, `.sql(`) or holds a statement (a
    string, or an f-string's text, that starts with a SQL keyword), by line."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        called = getattr(getattr(node, "func", None), "attr", None)
        if isinstance(node, ast.Call) and called in RUNS_SQL:
            found.add(f"line {node.lineno} calls .{called}(")
        elif isinstance(node, ast.Constant) and STATEMENT.match(str(node.value)):
            found.add(f"line {node.lineno} holds {node.value[:40]!r}")
    return found


def test_only_the_store_writes_sql():
    store = ROOT / "agent" / "store"
    found = sorted(
        f"{path.relative_to(ROOT)}: {where}"
        for path in modules().values()
        if not path.is_relative_to(store)
        for where in sql_in(path.read_text())
    )
    assert found == []


def test_the_sql_check_finds_statements_and_calls():
    source = (
        'QUERY = """\n  SELECT 1"""\n'
        "def f(con, table):\n"
        '    con.execute(f"DELETE FROM {table}")\n'
        '    return "Select a reviewer"\n'
    )
    assert sql_in(source) == {
        "line 1 holds '\\n  SELECT 1'",
        "line 4 calls .execute(",
        "line 4 holds 'DELETE FROM '",
    }
