"""The task types live in agent/tasks, one object each behind the `Task` protocol: no module
outside it branches on a task's name."""

import ast
from pathlib import Path

from conftest import GUIDELINES

from labelagent.guidelines import TASKS, load_guideline
from labelagent.tasks import all_tasks, task_for

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("agent", "review_ui", "evals")
# agent/simserver stands in for an LLM provider: it sees JSON schemas, never a guideline, and its
# label "kinds" ("choice", "rating", "spans", ...) are the shapes of those schemas.
EXEMPT = ("agent/tasks/", "agent/simserver/")
NAMES = frozenset(TASKS)


def sources(root: Path) -> dict[str, ast.Module]:
    found = {}
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            if not name.startswith(EXEMPT):
                found[name] = ast.parse(path.read_text(encoding="utf-8"), name)
    return found


def names_a_task(node: ast.AST | None) -> bool:
    """A task's name written out, or a collection that holds one."""
    if isinstance(node, ast.Constant):
        return node.value in NAMES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(names_a_task(e) for e in node.elts)
    return isinstance(node, ast.Starred) and names_a_task(node.value)


def reads_a_task(node: ast.AST) -> bool:
    """`task` or `something.task`: a task's name read at run time."""
    return (isinstance(node, ast.Name) and node.id == "task") or (
        isinstance(node, ast.Attribute) and node.attr == "task"
    )


def is_literal_type(node: ast.AST) -> bool:
    """`Literal[...]`: the type of the guideline's `task:` names the tasks, it looks none up."""
    return isinstance(node, ast.Name) and node.id == "Literal"


def task_tables(modules: dict[str, ast.Module]) -> set[str]:
    """Constants that are tables of task names (CHOICE_TASKS = ("classification", ...))."""
    tables = {"TASK_MODULES"}
    for tree in modules.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                value, target = node.value, node.targets[0]
                keys = value.keys if isinstance(value, ast.Dict) else getattr(value, "elts", [])
                words = [k.value for k in keys if isinstance(k, ast.Constant)]
                if isinstance(target, ast.Name) and words and set(words) <= NAMES:
                    tables.add(target.id)
    return tables


def task_branches(root: Path) -> list[str]:
    """Every comparison or membership test against a task's name or a table of them, lookup
    keyed by a task's name, and `match` on one, outside agent/tasks."""
    modules = sources(root)
    tables = task_tables(modules)

    def is_table(node: ast.AST) -> bool:
        name = getattr(node, "id", None) or getattr(node, "attr", None)
        return isinstance(node, ast.Name | ast.Attribute) and name in tables

    found = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            hit = False
            if isinstance(node, ast.Compare):
                hit = any(names_a_task(op) or is_table(op) for op in [node.left, *node.comparators])
            elif isinstance(node, ast.Subscript) and not is_literal_type(node.value):
                key = node.slice
                hit = is_table(node.value) or names_a_task(key) or reads_a_task(key)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                hit = node.func.attr == "get" and any(reads_a_task(a) for a in node.args[:1])
            elif isinstance(node, ast.Match):
                hit = reads_a_task(node.subject)
            if hit:
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_no_module_outside_agent_tasks_branches_on_a_task_name():
    assert task_branches(ROOT) == []


def test_the_check_finds_a_branch_on_a_task_name(tmp_path):
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "x.py").write_text(
        'CHOICE = ("classification", "preference")\n'
        'def f(g):\n    return g.task in CHOICE or g.task == "rating" or MODULES[g.task]\n'
    )
    assert len(task_branches(tmp_path)) == 3


def test_each_task_type_is_one_object_named_as_guidelines_name_it():
    assert sorted(task.name for task in all_tasks()) == sorted(TASKS)
    for path in sorted(GUIDELINES.glob("*.md")):
        guideline = load_guideline(path)
        assert task_for(guideline).name == guideline.task
        assert task_for(guideline) is task_for(guideline)
