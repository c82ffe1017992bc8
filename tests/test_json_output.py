"""`--json` of `labelagent calibrate` and `labelagent eval` on fixed logs, byte for byte as
recorded in tests/data/json_output/ (the results are typed objects inside; this is the edge that
scripts read). What differs between two runs is compared as a placeholder: the calibration id,
the time and path of an eval, and how many decisions --apply moves (the audit draw's key is
random per log)."""

import re
from pathlib import Path

import test_eval
from conftest import GUIDELINES, write_jsonl
from test_calibration import make_log
from test_cascade import cli_label, gold_table, items
from typer.testing import CliRunner

from labelagent.cli import app
from labelagent.simserver import SimConfig, SimServer

eval_log = test_eval.log  # a fixture: test_eval's 30 items and four annotators

RECORDED = Path(__file__).parent / "data" / "json_output"


VARYING = [
    (r"cal-[0-9a-f]{12}", "cal-<id>"),
    (r'"generated_at": "[^"]*"', '"generated_at": "<time>"'),
    (r'"db": "[^"]*"', '"db": "<db>"'),
    (r'"(to_auto|to_escalated|reasons_changed|unchanged)": \d+', r'"\1": <n>'),
]


def cli_json(*args: object) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    text = result.stdout
    for pattern, placeholder in VARYING:
        text = re.sub(pattern, placeholder, text)
    return text


def calibrate_outputs(tmp_path: Path, db: Path) -> dict[str, str]:
    """A rule with a held-out check and --apply, and a target no threshold reaches."""
    log = make_log(tmp_path, db, imported=100)
    return {
        "calibrate_rule": cli_json(
            "calibrate", "--db", log, "--json", "--target-error", "0.15", "--apply"
        ),
        "calibrate_no_rule": cli_json(
            "calibrate", "--db", log, "--json", "--target-error", "0.01", "--holdout", "0"
        ),
    }


def cascade_outputs(tmp_path: Path, db: Path) -> dict[str, str]:
    path = items(tmp_path, 200)
    gold = write_jsonl(
        tmp_path / "gold.jsonl", [{"id": f"t{i}", "label": "positive"} for i in range(200)]
    )
    with SimServer(SimConfig(gold=gold_table(200, 100, 180, 190), seed=1)) as server:
        extra = ("--audit-share", "0", "--calibration-share", "1")
        assert cli_label(db, path, server.url, *extra).exit_code == 0
    sentiment = GUIDELINES / "sentiment.md"
    cli_json("import-labels", gold, "--annotator", "gold", "-g", sentiment, "--db", db)
    args = ["--target-error", "0.2", "--holdout", "0.25", "--apply"]
    return {"calibrate_cascade": cli_json("calibrate", "--db", db, "--json", *args)}


def eval_outputs(log: Path) -> dict[str, str]:
    return {
        "eval_humans": cli_json("eval", "--db", log, "--json", "--bootstrap", "100"),
        "eval_gold": cli_json(
            "eval", "--db", log, "--json", "--bootstrap", "100", "--reference", "gold"
        ),
    }


def assert_recorded(outputs: dict[str, str]) -> None:
    for name, text in outputs.items():
        assert text == (RECORDED / f"{name}.json").read_text(), name


def test_calibrate_json_is_as_recorded(tmp_path, db):
    assert_recorded(calibrate_outputs(tmp_path, db))


def test_cascade_calibrate_json_is_as_recorded(tmp_path, db):
    assert_recorded(cascade_outputs(tmp_path, db))


def test_eval_json_is_as_recorded(eval_log):
    assert_recorded(eval_outputs(eval_log))
