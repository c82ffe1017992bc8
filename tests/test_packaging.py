"""What an installed labelagent carries: the product under the one name `labelagent`, not the lab's
benchmark scripts, and nothing else at the top of site-packages."""

import ast
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# what the build reads: pyproject.toml maps these folders to labelagent, labelagent.evals, ...
SOURCES = (
    *("pyproject.toml", "setup.py", "README.md"),
    *("agent", "evals", "review_ui", "prompts", "guidelines"),
)
PIP = (sys.executable, "-m", "pip", "--quiet")
OLD_NAMES = re.compile(r"(agent|evals|review_ui)(\.\w+)*")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel .` builds, from a copy of the sources: a build in the checkout would
    reuse its build/ folder, where a module deleted since the last build still lies."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("labelagent-*.whl"))


def names_in(wheel: Path) -> set[str]:
    return set(zipfile.ZipFile(wheel).namelist())


def test_the_wheel_installs_labelagent_and_nothing_else_at_the_top(wheel):
    top = {name.split("/")[0] for name in names_in(wheel)}
    assert top == {"labelagent", wheel.name.split("-py3")[0] + ".dist-info"}


def test_the_wheel_holds_the_product_but_not_the_benchmarks(wheel):
    names = names_in(wheel)
    assert not [n for n in names if "/benchmarks/" in n or "/bench_" in n], "benchmarks ship"
    assert "labelagent/evals/README.md" not in names
    for product in (
        "labelagent/cli.py",
        "labelagent/evals/metrics.py",
        "labelagent/evals/report.py",
        "labelagent/evals/templates/report.html.j2",
        "labelagent/review_ui/app.py",
        "labelagent/demo_data/card_support_sample.jsonl",
        "labelagent/_bundled/guidelines/sentiment.md",
        "labelagent/_bundled/prompts/classification.j2",
    ):
        assert product in names


def test_the_wheel_holds_every_module_of_the_three_folders(wheel):
    expected = {
        f"{package}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, package in (
            ("agent", "labelagent"),
            ("evals", "labelagent/evals"),
            ("review_ui", "labelagent/review_ui"),
        )
        for path in (ROOT / folder).rglob("*.py")
        if "benchmarks" not in path.relative_to(ROOT).parts
    }
    assert expected - names_in(wheel) == set()


def test_the_wheel_holds_every_file_the_review_app_runs(wheel):
    """`labelagent review` runs review_ui/app.py from the installed package, with its pages,
    state, key script and span component beside it."""
    app_files = {
        "labelagent/review_ui/" + path.relative_to(ROOT / "review_ui").as_posix()
        for path in (ROOT / "review_ui").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert app_files - names_in(wheel) == set()
    assert {
        "labelagent/review_ui/launch.py",
        "labelagent/review_ui/keys.js",
        "labelagent/review_ui/components/spans/index.html",
    } <= names_in(wheel)


def test_the_installed_console_script_runs_from_the_wheel(wheel, tmp_path):
    """A fresh environment with only the wheel installed (its dependencies are borrowed from this
    one, added to the path after it): `labelagent --help` runs, and the package reads its
    prompts and guidelines from inside itself."""
    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = Path(
        subprocess.check_output(
            [python, "-c", "import site; print(site.getsitepackages()[0])"], text=True
        ).strip()
    )
    assert {p.name for p in site.iterdir()} - {"__pycache__"} == {
        "labelagent",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    borrowed = [p for p in sys.path if p.endswith("site-packages")]
    (site / "zz_borrowed.pth").write_text("\n".join(borrowed) + "\n")

    helped = subprocess.run([env / "bin" / "labelagent", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    assert "review" in helped.stdout and "label" in helped.stdout
    where = subprocess.check_output(
        [python, "-c", "from labelagent.paths import resource_dir; print(resource_dir('prompts'))"],
        text=True,
    )
    assert Path(where.strip()) == site / "labelagent" / "_bundled" / "prompts"


def old_name_imports(path: Path) -> list[str]:
    """Imports of, and `-m`/string references to, the folders' own names (agent, evals and
    review_ui, and modules under them) rather than the installed ones (labelagent, ...)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value] if "." in node.value else []
        else:
            continue
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if OLD_NAMES.fullmatch(n)
        ]
    return found


def test_the_code_names_its_modules_by_their_installed_names():
    """Run from the checkout, an import of a module under agent/ by its folder's name would
    still work (the checkout is on sys.path) and load a second copy of the code beside the
    installed labelagent's."""
    found = [
        hit
        for folder in ("agent", "evals", "review_ui", "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for hit in old_name_imports(path)
    ]
    assert found == []
