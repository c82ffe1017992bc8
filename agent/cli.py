"""The `labelagent` command. It parses options, calls the modules that do the work, and turns a
LabelagentError into one message that says what to do next."""

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from labelagent.errors import BudgetExceeded, LabelagentError, ProviderUnreachable
from labelagent.guidelines import load_guideline
from labelagent.inputs import IdField
from labelagent.item_checks import DEFAULT_MAX_ITEM_BYTES
from labelagent.store.address import PostgresUrl, parse_db

if TYPE_CHECKING:  # imported where used: they are slow to import for --help
    from labelagent.calibration.calibrate import CalibrationResult
    from labelagent.calibration.cascade import CascadeCalibrationResult
    from labelagent.costs import Costs
    from labelagent.evals.evaluate import EvalResult
    from labelagent.evals.metrics import Estimate
    from labelagent.planning import Plan
    from labelagent.status import LogStatus

app = typer.Typer(
    help="Label a text dataset with LLMs against a written guideline; send what they are unsure "
    "of to people; log every draft, decision and review to DuckDB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
out = Console()

# The commands tested on PostgreSQL; the others refuse a postgresql:// --db, touching nothing.
ON_POSTGRES = (
    "calibrate",
    "status",
    "migrate",
    "eval",
    "export",
    "import-labels",
    "plan",
    "reviewer add",
    "reviewer reset-password",
    "reviewer remove",
    "reviewer list",
    "settings set",
    "settings show",
)  # and copy, schema --db


def _refuse_postgres_yet(ctx: typer.Context, db: "Path | PostgresUrl") -> "Path | PostgresUrl":
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    command = " ".join(reversed(names))
    if isinstance(db, PostgresUrl) and command not in ON_POSTGRES:
        raise typer.BadParameter(
            f"`labelagent {command}` does not run on PostgreSQL yet; these do: "
            f"{', '.join(ON_POSTGRES)}, copy, schema. Copy the log to a DuckDB file "
            "(`labelagent copy --from URL --to FILE`) to use it there."
        )
    return db


Db = Annotated[
    Path,  # or a PostgresUrl: Typer takes no union, parse_db decides
    typer.Option(
        "--db",
        envvar="LABELAGENT_DB",
        parser=parse_db,
        callback=_refuse_postgres_yet,
        metavar="FILE|URL",
        help="The log: a DuckDB file (created if missing), or a PostgreSQL database "
        "(postgresql://user@host:port/name).",
    ),
]
GuidelineOpt = Annotated[
    Path,
    typer.Option(
        "--guideline",
        "-g",
        help="Guideline: Markdown with front matter naming the task and labels.",
    ),
]
Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="litellm model string (openai/gpt-4o-mini, anthropic/claude-sonnet-4-5, "
        "ollama/llama3.1, ...), or 'student' (the newest student trained in --db for the "
        "guideline; 'student:<id>' for one). Default: the embedded local model ('local', or "
        "'local:/path/model.gguf').",
    ),
]
ApiBase = Annotated[
    str | None,
    typer.Option(
        "--api-base",
        help="Base URL of an OpenAI-compatible server (vLLM, llama.cpp server, Ollama); "
        "use with --model openai/NAME.",
    ),
]
IdFieldOpt = Annotated[
    str | None,
    typer.Option(
        "--id-field",
        help="The field that holds item ids; without it ids are a hash of the item's content.",
        show_default="id",
    ),
]
MaxItemBytes = Annotated[
    int,
    typer.Option(
        min=1,
        help="Refuse the input if one item (its fields as JSON, UTF-8) is larger than this.",
    ),
]
DEFAULT_DB = Path("labelagent.duckdb")
FILE_HINT = "Check that the path exists and that you may read it, or write in its folder."
EXIT_CODES = {BudgetExceeded: 3, ProviderUnreachable: 4}  # any other LabelagentError: 1
BAR_SECONDS = 0.25  # the progress bar's state is updated at most this often
BAR_REDRAWS_PER_SECOND = 4  # and drawn this often (rich draws 10 times a second by default)


def _above_zero(value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value} is not above 0.")
    return value


@contextmanager
def _reported() -> Iterator[None]:
    """Every command's edge: a LabelagentError, or a file the system refused, becomes one
    message and what to do next, with exit code 1 (3 for a spent budget)."""
    try:
        yield
    except LabelagentError as e:
        _fail(e)
    except OSError as e:
        if e.filename is None:
            raise
        _fail(LabelagentError(f"{e.filename}: {e.strerror}", hint=FILE_HINT))


def _fail(error: LabelagentError) -> NoReturn:
    """Printed unwrapped, so a long path stays one piece to copy."""
    console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    if error.hint:
        console.print(f"[dim]{escape(error.hint)}[/]", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_CODES.get(type(error), 1))


def _show(result: Any, as_json: bool, print_text: Callable[[Any], None]) -> None:
    """A command's result: as JSON with --json (its `as_dict()` where it has one, else a
    dataclass as its fields, in order), else as text."""
    if as_json:
        out.print_json(json.dumps(_as_json(result)))
    else:
        print_text(result)


def _as_json(result: Any) -> Any:
    if hasattr(result, "as_dict"):
        return result.as_dict()
    return asdict(result) if is_dataclass(result) else result


def _id_field(name: str | None) -> IdField:
    """--id-field, and whether it was given: left out, items without an `id` field get ids
    from their content."""
    return IdField() if name is None else IdField(name, given=True)


@app.command()
def label(
    input: Annotated[Path, typer.Argument(help="Items to label: .jsonl, .csv, .tsv or .parquet.")],
    guideline: GuidelineOpt,
    db: Db = DEFAULT_DB,
    model: Model = None,
    api_base: ApiBase = None,
    samples: Annotated[
        int, typer.Option(min=1, help="Most samples per item and model (self-consistency).")
    ] = 5,
    jury: Annotated[
        list[str] | None, typer.Option(help="Another model that drafts too (repeatable).")
    ] = None,
    escalate_to: Annotated[
        list[str] | None,
        typer.Option(
            help="A stronger model for the items the stages before it are unsure of "
            "(repeatable, in order): a cascade. Unsure after the last stage: people.",
        ),
    ] = None,
    calibration_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="With --escalate-to: share of items run through every stage whatever their "
            "scores (audit items always are), so `labelagent calibrate` can learn the cascade.",
        ),
    ] = 0.05,
    concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            help="Most requests in flight at once, per model. It starts at 16 and grows while "
            "latency holds; a 429 halves it.",
        ),
    ] = 64,
    rpm: Annotated[
        float | None,
        typer.Option(
            callback=_above_zero,
            help="Most requests per minute, per model. Default: 95% of the limit the provider "
            "states in its rate-limit headers, if it sends them.",
        ),
    ] = None,
    tpm: Annotated[
        float | None,
        typer.Option(
            callback=_above_zero,
            help="Most tokens per minute (prompt plus max_tokens), per model. Default: as --rpm.",
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Label only the first N items.")] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            callback=_above_zero,
            help="Most US dollars to spend on this guideline with these models, counting what "
            "earlier runs spent (cumulative). Each request's worst case is reserved before it "
            "is sent, so the total never goes above it. Needs a model litellm can price.",
        ),
    ] = None,
    id_field: IdFieldOpt = None,
    temperature: Annotated[
        float,
        typer.Option(
            min=0.0, max=2.0, help="Sampling temperature (must be above 0 for self-consistency)."
        ),
    ] = 0.7,
    stop_confidence: Annotated[
        float,
        typer.Option(
            min=0.5,
            max=1.0,
            help="Stop sampling an item once the leading label is this likely to be the "
            "majority (1 = only when the rest cannot change it).",
        ),
    ] = 0.85,
    fixed_samples: Annotated[
        bool,
        typer.Option(
            "--fixed-samples", help="Draw all --samples for every item: no early stopping."
        ),
    ] = False,
    min_agreement: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Escalate when fewer samples agree than this share. Default 0.8, or the "
            "latest calibration.",
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Escalate when the mean stated confidence is below this. Default 0.5, or "
            "the latest calibration.",
        ),
    ] = None,
    audit_share: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of would-be-auto items sent to review anyway, to measure auto error "
            "without bias. Default 0.05.",
        ),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="Structured output: auto, tools, json_schema or json.")
    ] = "auto",
    timeout: Annotated[
        float,
        typer.Option(
            callback=_above_zero, help="Seconds before one request is given up and retried."
        ),
    ] = 60.0,
    max_item_bytes: MaxItemBytes = DEFAULT_MAX_ITEM_BYTES,
    examples: Annotated[
        int,
        typer.Option(
            min=0,
            help="Show up to N worked examples in each prompt, drawn from the log's trusted "
            "labels for this guideline (human reviews and imports; never the item's own label, "
            "never a model's).",
        ),
    ] = 0,
    example_selector: Annotated[
        str,
        typer.Option(
            help="Which examples: similar (the N most alike each item, by TF-IDF or "
            "--embedding-model), diverse "
            "(every label in turn, the same for all items) or fixed (N at random, the same for "
            "all items).",
        ),
    ] = "similar",
    embedding_model: Annotated[
        str | None,
        typer.Option(
            help="Rank similar examples by this embedding model's vectors (a litellm model, "
            "e.g. openai/text-embedding-3-small) instead of TF-IDF; the trusted labels are "
            "embedded once at the start, each item as it comes.",
        ),
    ] = None,
    embedding_api_base: Annotated[
        str | None,
        typer.Option(help="Where to ask --embedding-model (an OpenAI-compatible server's URL)."),
    ] = None,
    transport: Annotated[
        str,
        typer.Option(
            help="auto: the openai SDK for OpenAI-compatible providers, litellm for the rest; "
            "openai or litellm to force one (for diagnosis)."
        ),
    ] = "auto",
    batch: Annotated[
        bool,
        typer.Option(
            "--batch",
            help="Send the requests through the provider's batch interface, at its batch price "
            "(often half), in rounds; answers can take up to 24 hours. A killed run resumes by "
            "polling the same batches.",
        ),
    ] = False,
    batch_poll_seconds: Annotated[
        float, typer.Option(callback=_above_zero, help="With --batch: seconds between polls.")
    ] = 30.0,
) -> None:
    """Draft labels for every item, route each to auto or review, and log it all.

    Exit codes: 0 every item decided; 1 an error; 3 stopped at --budget; 4 the model's server
    stopped answering (the run stops after 5 items in a row get no answer): items without an
    answer wait for a retry, so run the same command again."""
    from labelagent.backends import make_backend
    from labelagent.batching import BatchLabeler
    from labelagent.cascade import Stage, check_stages, stage_thresholds
    from labelagent.examples import ExampleSettings
    from labelagent.pipeline import Labeler, RunSettings

    with _reported():
        shots = ExampleSettings(examples, example_selector, embedding_model, embedding_api_base)
        g = load_guideline(guideline)
        asked = [[model or "local", *(jury or [])], *([m] for m in escalate_to or [])]
        check_stages(asked)
        stages = [
            [
                make_backend(
                    m,
                    api_base,
                    mode=mode,
                    concurrency=concurrency,
                    timeout=timeout,
                    db=db,
                    guideline=g,
                    transport=transport,
                    rpm=rpm,
                    tpm=tpm,
                )
                for m in models
            ]
            for models in asked
        ]
        names = [[b.name for b in backends] for backends in stages]
        thresholds = stage_thresholds(
            db, g.content_hash, names, min_agreement, min_confidence, audit_share
        )
        backends = stages[0]
        settings = RunSettings(
            calibration_share=calibration_share,
            samples=samples,
            temperature=temperature,
            stop_confidence=stop_confidence,
            early_stop=not fixed_samples,
            limit=limit,
            budget_usd=budget,
            max_item_bytes=max_item_bytes,
        )
        batching = _batching(batch, batch_poll_seconds, stages)
        with _progress_bar() as bar:
            task = bar.add_task("labeling", total=None, cost="")
            shown = [0.0]

            def show(p: Any, final: bool = False) -> None:
                """Every item reports; the bar takes a new state a few times a second."""
                now = time.monotonic()
                if now - shown[0] < BAR_SECONDS and not final:
                    return
                shown[0] = now
                routes = f"auto {p.auto} · review {p.escalated} · ${p.cost_usd:.4f}"
                bar.update(task, total=p.total, completed=p.done + p.skipped, cost=routes)

            labeler = (BatchLabeler if batch else Labeler)(
                db,
                g,
                backends,
                settings,
                thresholds[0],
                concurrency=concurrency * len(backends),
                on_progress=show,
                escalate_to=[Stage(b, t) for b, t in zip(stages[1:], thresholds[1:], strict=True)],
                examples=shots,
                **batching,
            )
            try:
                progress = labeler.run(input, _id_field(id_field))
            finally:
                show(labeler.progress, final=True)
    _print_run(progress, db)


def _batching(batch: bool, poll_seconds: float, stages: list[list[Any]]) -> dict[str, Any]:
    """With --batch: refuse a model without a batch interface (before the progress bar), how
    often to poll, and printing what the batches do."""
    if not batch:
        return {}
    from labelagent.batching import check_batch

    check_batch([b for backends in stages for b in backends])
    return {"poll_seconds": poll_seconds, "on_notice": lambda text: console.print(escape(text))}


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[cost]}"),
        console=console,
        transient=False,
        refresh_per_second=BAR_REDRAWS_PER_SECOND,
    )


def _print_run(p, db: Path) -> None:
    out.print(
        f"run {p.run_id}: {p.done} labeled ({p.auto} auto, {p.escalated} escalated), "
        f"{p.skipped} already decided, {p.requests_samples} new samples, ${p.cost_usd:.4f}. "
        f"Log: {db}"
    )


@app.command()
def plan(
    input: Annotated[Path, typer.Argument(help="Items to label.")],
    guideline: GuidelineOpt,
    db: Db = DEFAULT_DB,
    model: Model = None,
    samples: Annotated[int, typer.Option(min=1)] = 5,
    jury: Annotated[
        list[str] | None, typer.Option(help="Another model that drafts too (repeatable).")
    ] = None,
    escalate_to: Annotated[
        list[str] | None,
        typer.Option(help="A later stage of a cascade (repeatable, in order), as for label."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
    id_field: IdFieldOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    max_item_bytes: MaxItemBytes = DEFAULT_MAX_ITEM_BYTES,
    batch: Annotated[
        bool, typer.Option("--batch", help="Price the run at the providers' batch prices.")
    ] = False,
) -> None:
    """Dry run: check the input and show items, samples and the most it could cost (per stage
    of a cascade, with the expected cost where the log has earlier decisions of it)."""
    from labelagent.planning import plan as make_plan

    with _reported():
        g = load_guideline(guideline)
        result = make_plan(
            input,
            g,
            db,
            [model or "local", *(jury or [])],
            samples,
            _id_field(id_field),
            limit,
            max_item_bytes,
            escalate_to,
            batch,
        )
    _show(result, as_json, _print_plan)


def _print_plan(plan: "Plan") -> None:
    out.print(
        f"{plan.items} items in {plan.input}: {plan.already_decided} already decided, "
        f"{plan.to_label} to label."
    )
    for m in plan.models:
        cost = (
            "price unknown to litellm"
            if m.max_cost_usd is None
            else f"at most ${m.max_cost_usd:.4f}"
        )
        expected = "" if m.expected_cost_usd is None else f", expected ${m.expected_cost_usd:.4f}"
        out.print(f"  stage {m.stage} {m.model}: at most {m.max_samples} samples, {cost}{expected}")
    out.print(f"[dim]{plan.note}[/]")


@app.command()
def status(
    db: Db = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts by route, reviews and cost so far."""
    from labelagent.status import status as get_status

    with _reported():
        result = get_status(db)
    _show(result, as_json, _print_status)


def _print_status(result: "LogStatus") -> None:
    table = Table(
        title=f"{result.db}: {result.items} items, {result.drafts} drafts "
        f"({result.failed_drafts} failed), {result.waiting} items waiting for a retry, "
        f"{result.reviews} reviews, "
        f"${result.cost_usd:.4f}"
    )
    for column in (
        "guideline",
        "task",
        "auto",
        "escalated",
        "waiting",
        "final labels",
        "reviewed",
        "cost $",
        "escalated because",
    ):
        table.add_column(column)
    for g in result.guidelines:
        reasons = ", ".join(f"{k} {v}" for k, v in g.escalation_reasons.items())
        table.add_row(
            f"{g.name} ({g.guideline_hash[:8]})",
            g.task,
            str(g.auto),
            str(g.escalated),
            str(g.waiting),
            str(g.final_labels),
            str(g.reviewed_items),
            f"{g.cost_usd:.4f}",
            reasons,
        )
    out.print(table)
    _print_costs(result.costs)


def _print_costs(costs: "Costs") -> None:
    rate = costs.reviewer_cost_per_hour
    title = (
        "cost per trusted label (reviewer time unpriced: labelagent settings set "
        "reviewer_cost_per_hour N)"
        if rate is None
        else f"cost per trusted label (reviewers at ${rate:g}/hour)"
    )
    table = Table(title=title)
    for column in (
        "guideline",
        "models $",
        "reviews",
        "reviewers $",
        "per label $",
        "per human label $",
        "per llm label $",
        "people alone $",
    ):
        table.add_column(column)
    for g in costs.guidelines:
        human, llm = g.by_source
        table.add_row(
            f"{g.name} ({g.guideline_hash[:8]})",
            _money(g.model_cost_usd),
            f"{g.timed_reviews} ({g.review_seconds:.0f} s)",
            _money(g.reviewer_cost_usd),
            _money(g.per_final_label_usd),
            _money(human.per_label_usd),
            _money(llm.per_label_usd),
            _money(g.people_alone_usd),
        )
    out.print(table)


def _money(dollars: float | None) -> str:
    return "-" if dollars is None else f"{dollars:.4f}"


@app.command()
def export(
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write: .jsonl, .csv or .parquet.")
    ],
    db: Db = DEFAULT_DB,
    guideline: Annotated[
        str | None, typer.Option(help="Only this guideline (name or hash).")
    ] = None,
) -> None:
    """Write the final labels (a person's where there is one, else the auto-accepted LLM label)."""
    from labelagent.exporting import export as do_export

    with _reported():
        n = do_export(db, out_path, guideline)
    out.print(f"wrote {n} final labels to {out_path}")


@app.command("import-labels")
def import_labels(
    file: Annotated[
        Path, typer.Argument(help="Rows with an id and a label in the task's own form.")
    ],
    annotator: Annotated[
        str, typer.Option(help="Who gave these labels (a person, a team, 'gold').")
    ],
    guideline: GuidelineOpt,
    db: Db = DEFAULT_DB,
    id_field: IdFieldOpt = None,
    label_field: Annotated[str, typer.Option(help="The field that holds the label.")] = "label",
    model: Annotated[
        bool,
        typer.Option(
            "--model",
            help="The annotator is a model, not a person: its labels are compared by "
            "`labelagent eval` and can be calibrated, but never become final labels.",
        ),
    ] = False,
    confidence_field: Annotated[
        str | None,
        typer.Option(help="A field with the annotator's stated confidence, 0..1."),
    ] = None,
    max_item_bytes: MaxItemBytes = DEFAULT_MAX_ITEM_BYTES,
) -> None:
    """Bring existing human or gold labels in as reviews (they count as independent labels),
    or another model's labels with --model."""
    from labelagent.importing import import_labels as do_import

    with _reported():
        g = load_guideline(guideline)
        result = do_import(
            db,
            file,
            annotator,
            g,
            _id_field(id_field).name,
            label_field,
            kind="model" if model else "human",
            confidence_field=confidence_field,
            max_item_bytes=max_item_bytes,
        )
    out.print(
        f"{result.rows} rows read, {result.added} reviews added "
        f"({result.rows - result.added} already there), {result.new_items} new items"
    )


Reference = Annotated[
    str,
    typer.Option(
        help="Whose labels count as right: 'humans' (each item's majority of blind reviews and "
        "imported human labels) or one annotator's name, e.g. 'gold'.",
    ),
]


@app.command("eval")
def eval_(
    db: Db = DEFAULT_DB,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result as JSON.")
    ] = False,
    html: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report here.")
    ] = None,
    reference: Reference = "humans",
    bootstrap: Annotated[int, typer.Option(min=50, help="Bootstrap resamples per interval.")] = 500,
    exclude_example_neighbours: Annotated[
        bool,
        typer.Option(
            help="Leave out the model labels of every item whose trusted label any prompt of the "
            "guideline showed as a few-shot example (label --examples; any run, any model), so "
            "every model figure is on items whose reference label never entered a prompt, as on "
            "a held-out set. Human-vs-human figures keep every item."
        ),
    ] = False,
) -> None:
    """LLM-vs-human and human-vs-human agreement per guideline and model, with 95% intervals.

    Only blind reviews and imported labels count as independent human labels."""
    from labelagent.evals.evaluate import evaluate

    with _reported():
        result = evaluate(
            db,
            reference,
            n_resamples=bootstrap,
            exclude_example_neighbours=exclude_example_neighbours,
        )
        if html:
            from labelagent.evals.report import write_html

            write_html(result.as_dict(), html)
            console.print(f"wrote {html}")
    _show(result, as_json, _print_eval)


def _print_eval(result: "EvalResult") -> None:
    if not result.guidelines:
        out.print("nothing to compare yet: label items, then review blind items or import labels")
    for g in result.guidelines:
        names = sorted({k for c in g.comparisons for k in c.metrics})
        table = Table(
            title=f"{g.guideline} ({g.guideline_hash[:8]}, {g.task}): vs {g.reference}"
            f" on {g.n_reference_items} items"
        )
        for column in ("annotator", "kind", "n", *names):
            table.add_column(column)
        for c in g.comparisons:
            cells = [_estimate(c.metrics.get(k)) for k in names]
            table.add_row(c.annotator, c.kind, str(c.n), *cells)
        out.print(table)
        if g.left_out_as_examples:
            out.print(
                f"left out: the model labels of {g.left_out_as_examples} items whose labels "
                "were shown as examples"
            )
        agreement = g.human_agreement
        if agreement:
            out.print(
                f"humans among themselves: Krippendorff's alpha "
                f"{_estimate(agreement.krippendorff_alpha)} on {agreement.n_items} items, "
                f"{agreement.n_annotators} annotators"
                + ("" if g.reference == "humans" else f" ({g.reference} left out)")
            )
        for model, inside in g.inside_human_range.items():
            out.print(f"{model}: {'inside' if inside else 'outside'} the range of human agreement")
        if g.calibration:
            out.print(g.calibration.message)


def _estimate(e: "Estimate | None") -> str:
    if not e or e.value is None:
        return "-"
    if e.low is None:
        return f"{e.value:.3f}"
    return f"{e.value:.3f} [{e.low:.2f}, {e.high:.2f}]"


@app.command()
def calibrate(
    target_error: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Highest error rate allowed among auto-accepted items."
        ),
    ],
    confidence: Annotated[
        float,
        typer.Option(
            min=0.5, max=0.999, help="Probability that the error stays under --target-error."
        ),
    ] = 0.9,
    db: Db = DEFAULT_DB,
    guideline: Annotated[
        str | None,
        typer.Option(
            "--guideline", "-g", help="Guideline file or name (default: the only one in the log)."
        ),
    ] = None,
    annotator: Annotated[
        str | None,
        typer.Option(
            help="The model whose labels the rule accepts (default: the log's main model); an "
            "imported model (import-labels --model) is calibrated on its stated confidence; "
            "'student' is the newest student, judged only on items it was not trained on.",
        ),
    ] = None,
    reference: Reference = "humans",
    holdout: Annotated[
        float,
        typer.Option(min=0.0, max=0.9, help="Share of reviewed items kept to check the rule."),
    ] = 0.2,
    apply: Annotated[
        bool, typer.Option("--apply", help="Route the items already decided again under the rule.")
    ] = False,
    guarantee: Annotated[
        str,
        typer.Option(
            help="'population': the error among items like the reviewed ones; 'dataset': the "
            "error among this log's decided items that have no human label (stricter).",
        ),
    ] = "population",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Choose the acceptance threshold that keeps the error of auto-accepted labels under
    --target-error with probability --confidence, from items with an independent human label.

    The score is the verdict's support: the mean probability its samples give its label (stated
    confidence if they chose it); agreement for multilabel, rating and spans. The rule is stored
    in the log and used by every later `labelagent label` run."""
    from labelagent.calibration.calibrate import run_calibration

    with _reported():
        result = run_calibration(
            db, target_error, confidence, guideline, annotator, reference, holdout, apply, guarantee
        )
    _show(result, as_json, _print_calibration)


def _print_calibration(result: "CalibrationResult | CascadeCalibrationResult") -> None:
    from labelagent.calibration.cascade import CascadeRerouted

    out.print(
        f"{result.guideline} / {result.model}: {result.n_calibration} items with a"
        f" reference label choose the rule, {result.n_holdout} held out"
    )
    out.print(result.message, highlight=False)
    if result.holdout:
        h = result.holdout
        error = "-" if h.error is None else f"{h.error:.3f}"
        out.print(f"held-out check: {h.accepted} of {h.items} accepted, error {error}")
    if result.calibration_id:
        if result.applies_to_labeling:
            out.print(f"stored as {result.calibration_id}; new decisions of this model use it")
        else:
            out.print(
                f"stored as {result.calibration_id} for reference: a rule on an imported "
                "model's stated confidence is not applied to labeling runs"
            )
    if result.rerouted:
        moved = result.rerouted
        needs_calls = moved.needs_calls if isinstance(moved, CascadeRerouted) else 0
        out.print(
            f"re-routed: {moved.to_auto} to auto, {moved.to_escalated} to review,"
            f" {moved.reasons_changed} with other reasons, {moved.unchanged} unchanged"
            + (f", {needs_calls} need new model calls" if needs_calls else "")
        )


@app.command()
def demo(
    db: Db = DEFAULT_DB,
    items: Annotated[int, typer.Option(min=1, help="How many of the bundled items to label.")] = 40,
) -> None:
    """The whole loop offline: the embedded model labels bundled customer messages, then
    tells you what next."""
    from labelagent.demo import run_demo

    with _reported():
        run_demo(db, items, _progress_bar, out)


@app.command()
def schema(
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write the Markdown here instead of printing it.")
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            parser=parse_db,
            metavar="FILE|URL",
            help="Document the schema this log has (DuckDB file or PostgreSQL URL) instead.",
        ),
    ] = None,
) -> None:
    """Print the documented schema of the log (DuckDB or PostgreSQL)."""
    from labelagent.store.schema_doc import generate

    with _reported():
        text = generate(db)
        if out_path:
            out_path.write_text(text, encoding="utf-8")
    if not out_path:
        print(text, end="")


@app.command()
def migrate(db: Db = DEFAULT_DB) -> None:
    """Upgrade the log to this labelagent's schema, keeping every row. Read commands (status,
    export, eval, plan, calibrate) never do this themselves."""
    from labelagent.store.db import migrate_existing

    with _reported():
        before, after = migrate_existing(db)
    if before == after:
        out.print(f"{db} is already at schema version {after}; nothing to do.")
    else:
        out.print(f"{db}: upgraded from schema version {before} to {after}.")


@app.command("copy")
def copy_command(
    source: Annotated[
        Path,
        typer.Option("--from", parser=parse_db, metavar="FILE|URL", help="The log to copy."),
    ],
    target: Annotated[
        Path,
        typer.Option(
            "--to",
            parser=parse_db,
            metavar="FILE|URL",
            help="Where to: a new DuckDB file or an empty PostgreSQL database.",
        ),
    ],
) -> None:
    """Copy a whole log, every table row for row, between DuckDB files and PostgreSQL databases
    (postgresql://user@host:port/name), either way. The target must hold no rows."""
    from labelagent.store.copying import copy_log

    with _reported():
        copied = copy_log(source, target)
    out.print(
        f"Copied {sum(copied.values())} rows in {len(copied)} tables from {source} to {target}."
    )


reviewer_app = typer.Typer(help="Reviewer accounts for the review app.", no_args_is_help=True)
app.add_typer(reviewer_app, name="reviewer")


@reviewer_app.command("add")
def reviewer_add(
    name: Annotated[str, typer.Argument(help="The name the reviewer signs in with.")],
    role: Annotated[
        str, typer.Option(help="reviewer, or adjudicator (also resolves disagreements).")
    ] = "reviewer",
    db: Db = DEFAULT_DB,
) -> None:
    """Create (or reset) an account. The password is read from standard input when one is piped
    in, else generated and printed once."""
    from labelagent.review.accounts import add_reviewer

    given = None if sys.stdin.isatty() else sys.stdin.readline().strip() or None
    with _reported():
        password = add_reviewer(db, name, role, given)
    if given:
        out.print(f"{role} {name!r} saved in {db}.")
    else:
        out.print(f"{role} {name!r} saved in {db}. Password (shown once): {password}")


@reviewer_app.command("reset-password")
def reviewer_reset_password(
    name: Annotated[str, typer.Argument(help="The reviewer whose password changes.")],
    db: Db = DEFAULT_DB,
) -> None:
    """Give a reviewer a new password (read from standard input when piped in, else generated
    and printed once). Signs them out everywhere and gives back the items they hold."""
    from labelagent.review.accounts import reset_password
    from labelagent.store.db import require_existing

    given = None if sys.stdin.isatty() else sys.stdin.readline().strip() or None
    with _reported():
        require_existing(db)
        password = reset_password(db, name, given)
    shown = "" if given else f" Password (shown once): {password}"
    out.print(f"New password for {name!r} saved in {db}; their sessions ended.{shown}")


@reviewer_app.command("remove")
def reviewer_remove(
    name: Annotated[str, typer.Argument(help="The reviewer to remove.")],
    db: Db = DEFAULT_DB,
) -> None:
    """Delete a reviewer's account: they are signed out at their next click and the items they
    hold go back to the queue. Their past reviews stay in the log."""
    from labelagent.review.accounts import remove_reviewer
    from labelagent.store.db import require_existing

    with _reported():
        require_existing(db)
        remove_reviewer(db, name)
    out.print(f"Removed {name!r} from {db}; their reviews stay.")


@reviewer_app.command("list")
def reviewer_list(db: Db = DEFAULT_DB) -> None:
    """The reviewer accounts and their roles."""
    from labelagent.review.accounts import list_reviewers
    from labelagent.store.db import require_existing

    with _reported():
        require_existing(db)
        reviewers = list_reviewers(db)
    for reviewer in reviewers:
        out.print(f"{reviewer.name}\t{reviewer.role}", highlight=False)


student_app = typer.Typer(
    help="Student models: small classifiers trained on the log's trusted labels.",
    no_args_is_help=True,
)
app.add_typer(student_app, name="student")


@student_app.command("train")
def student_train(
    guideline: GuidelineOpt,
    db: Db = DEFAULT_DB,
    include_auto: Annotated[
        bool,
        typer.Option(
            "--include-auto",
            help="Also learn from the auto-accepted labels of LLMs (never from a student's).",
        ),
    ] = False,
    holdout: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.9,
            help="Share of the human labels kept out of training (fixed by item id), so "
            "`labelagent calibrate` has labels the student never saw.",
        ),
    ] = 0.3,
) -> None:
    """Train a student (TF-IDF and logistic regression) on the guideline's human labels and
    store it in the log with the items it learned from. Use it with `label --model student`."""
    from labelagent.store.db import require_existing
    from labelagent.student_train import train_student

    with _reported():
        require_existing(db)
        result = train_student(db, load_guideline(guideline), include_auto, holdout)
    auto = f" ({result.n_auto} auto-accepted LLM labels)" if include_auto else ""
    accuracy = (
        ""
        if result.kept_out_accuracy is None
        else f"; accuracy on them {result.kept_out_accuracy:.3f}"
    )
    out.print(
        f"{result.student_id}: trained on {result.n_train} labels{auto} in "
        f"{result.seconds:.1f} s, {len(result.labels)} labels; {result.n_kept_out} human labels"
        f" kept out for calibrate{accuracy}"
        + ("" if result.new else " (the same student was already in the log)"),
        highlight=False,
    )
    out.print(
        "next: labelagent label ITEMS --model student, then labelagent calibrate"
        f" --annotator {result.student_id}: it accepts nothing until calibrated",
        highlight=False,
    )


@student_app.command("list")
def student_list(db: Db = DEFAULT_DB) -> None:
    """The students in the log, newest first."""
    from labelagent.store.db import require_existing
    from labelagent.store.students import list_students

    with _reported():
        require_existing(db)
        found = list_students(db)
    table = Table(title=f"{db}: {len(found)} students")
    table.add_column("student", no_wrap=True, min_width=20)
    for column in ("guideline", "task", "labels", "trained on", "kept-out accuracy"):
        table.add_column(column)
    for s in found:
        accuracy = s.settings.get("kept_out_accuracy")
        table.add_row(
            s.student_id,
            s.guideline_hash[:8],
            s.task,
            str(len(s.labels)),
            f"{s.n_train}" + (" (with auto)" if s.include_auto else ""),
            "-" if accuracy is None else f"{accuracy:.3f}",
        )
    out.print(table)


settings_app = typer.Typer(
    help="The log's settings: reviewer_cost_per_hour prices reviewer time.",
    no_args_is_help=True,
)
app.add_typer(settings_app, name="settings")


@settings_app.command("set")
def settings_set(
    name: Annotated[str, typer.Argument(help="reviewer_cost_per_hour")],
    value: Annotated[str, typer.Argument(help="A number >= 0.")],
    db: Db = DEFAULT_DB,
) -> None:
    """Store a setting in the log, e.g. reviewer_cost_per_hour 30 (dollars an hour)."""
    from labelagent.costs import set_setting

    with _reported():
        number = set_setting(db, name, value)
    out.print(f"{name} = {number:g} saved in {db}.", highlight=False)


@settings_app.command("show")
def settings_show(db: Db = DEFAULT_DB) -> None:
    """The log's settings and their values (- when not set)."""
    from labelagent.costs import SETTINGS, settings

    with _reported():
        values = settings(db)
    for name, value in values.items():
        shown = "-" if value is None else f"{value:g}"
        out.print(f"{name}\t{shown}\t{SETTINGS[name]}", highlight=False)


@app.command()
def review(
    db: Db = DEFAULT_DB,
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of the review app on this machine.")
    ] = 8501,
    host: Annotated[
        str,
        typer.Option(
            help="Address the app listens on: 127.0.0.1 is this machine only; another address "
            "serves anyone who reaches it (put a TLS proxy in front: review_ui/README.md)."
        ),
    ] = "127.0.0.1",
    guideline: Annotated[
        str | None,
        typer.Option(help="Set --overlap/--blind-share for this guideline (name or hash)."),
    ] = None,
    overlap: Annotated[
        int | None, typer.Option(min=1, help="Independent reviews each escalated item needs.")
    ] = None,
    blind_share: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of escalated items shown without the model's label "
            "(audit items always are).",
        ),
    ] = None,
    lease_minutes: Annotated[
        float,
        typer.Option(
            min=0.5,
            help="How long a reviewer holds the items shown to them; also how long a decision "
            "can be undone.",
        ),
    ] = 10.0,
    batch: Annotated[
        int, typer.Option(min=1, max=100, help="Items a reviewer claims at a time.")
    ] = 5,
) -> None:
    """Start the review queue (a Streamlit app) on the database `label` writes."""
    import subprocess

    from labelagent.review_ui.hold import Hold
    from labelagent.review_ui.launch import check_host, exposure_warning, prepare, streamlit_command

    with _reported():
        check_host(host)
        if warning := exposure_warning(host):
            console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
        prepare(db, guideline, overlap, blind_share, out)
    held = Hold(lease_minutes, batch)
    raise typer.Exit(subprocess.call(streamlit_command(db, port, held, host)))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def simserver(ctx: typer.Context) -> None:
    """Start the simulated annotator (an OpenAI-compatible server on 127.0.0.1) for tests and
    benchmarks. Options: see `labelagent simserver --help-server`."""
    from labelagent.simserver import main

    args = ["--help" if a == "--help-server" else a for a in ctx.args]
    main(args)


if __name__ == "__main__":
    app()
