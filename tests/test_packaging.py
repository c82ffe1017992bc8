"""What an installed labelagent carries: the product, not the lab's benchmark scripts."""

import zipfile
from pathlib import Path

from hatchling.builders.wheel import WheelBuilder

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_the_product_but_not_the_benchmarks(tmp_path):
    wheel = next(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith("evals/benchmarks/")], "benchmarks ship"
    assert not [n for n in names if "/bench_" in n]
    for product in ("agent/cli.py", "evals/metrics.py", "evals/report.py", "review_ui/app.py"):
        assert product in names
    assert "agent/_bundled/guidelines/sentiment.md" in names


def test_the_wheel_holds_every_file_the_review_app_runs(tmp_path):
    """`labelagent review` runs review_ui/app.py from the installed package, with its pages,
    state, key script and span component beside it."""
    wheel = next(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))
    names = set(zipfile.ZipFile(wheel).namelist())
    app_files = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "review_ui").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert app_files - names == set()
    assert {
        "review_ui/launch.py",
        "review_ui/keys.js",
        "review_ui/components/spans/index.html",
    } <= names
