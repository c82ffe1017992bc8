"""Throughput, adaptive sampling, rate limits and memory of labelagent's real path against the
simulated server.

    python evals/benchmarks/bench_throughput.py     # full sizes; 100,000 items take ~30 min
    python evals/benchmarks/bench_throughput.py --items 300 --long-items 200 --ratelimit-items 300 \
        --adaptive-items 100 --rounds-items 100 --memory-items 600 --estimate-items 300  # smoke

Each measurement runs against `python -m labelagent.simserver` as a separate process on 127.0.0.1
(so the server and the client do not share one GIL):

1. overhead: `Labeler` + `RemoteBackend` vs a bare client replaying the very same requests
   (same bodies, `n` and `seed`; per item in order, items concurrently), interleaved in one run:
   at 200 ms, labelagent on the openai SDK vs bare `openai.AsyncOpenAI`, then labelagent through
   litellm (the openai provider forced, `--transport litellm`) vs bare `litellm.acompletion`;
   at 1,500 ms (a second server), the openai pair. Each round runs every arm once. Printed at the
   end: client CPU per request and wall time as ratios, with their targets.
   ratelimit: the server allows --ratelimit-rpm requests a minute (429 beyond); labelagent with
   its default settings: requests per minute achieved, and failed samples.
2. adaptive: samples per item with adaptive consistency vs fixed K; do the majorities agree?
   rounds: dollars per item at gpt-4o-mini prices of the round sizes chosen in dollars
   (`round_size`), fixed K in one request and the adaptive schedule alone, with a provider that
   honours `n` and one that does not, with and without OpenAI-style prompt caching.
3. memory: peak RSS of a child process labelling a large streamed JSONL file.
4. startup: `labelagent --help`, wall time of a fresh interpreter.

Figures are printed with PASS/FAIL beside each target; nothing is asserted.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import duckdb

from labelagent.consistency import next_batch
from labelagent.guidelines import Guideline, load_guideline
from labelagent.records import Item, Sample, SampleRequest
from labelagent.store.readback import decided_labels, draft_costs, drafts_in_order
from labelagent.tasks import aggregate, build_messages

REPO = Path(__file__).resolve().parents[2]
GUIDELINE = REPO / "guidelines" / "sentiment.md"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "tweeteval_sentiment" / "items.jsonl"
URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/v1)")
TARGET_WALL = 1.15  # labelagent / bare openai at 200 ms
TARGET_CPU = {"openai": 1.25, "litellm": 1.15}  # client CPU per request, labelagent / bare
TARGET_LONG_WALL = 1.05  # at 1,500 ms
TARGET_RATE_SHARE = 0.90
TARGET_HELP_SECONDS = 0.5
DEFAULT_CONCURRENCY = 64  # labelagent label's default --concurrency
STEPS = ("overhead", "ratelimit", "adaptive", "rounds", "memory", "startup")
PAIRS = {"openai": ("labelagent", "bare openai"), "litellm": ("labelagent/litellm", "bare litellm")}
TARGET_ADAPTIVE_SHARE = 0.60
TARGET_AGREEMENT = 0.99
PRICED_MODEL = "openai/gpt-4o-mini"  # the simulated server answers for any model name
SCHEDULES = ("fixed K", "dollar rounds", "adaptive")
TARGET_RSS_MB = 400.0
WORDS = (
    "today game love hate new update phone bus weather friday team music show city news coffee",
    "work school movie album election traffic dog cat rain sun party win lose",
)
VOCABULARY = " ".join(WORDS).split()
SENTIMENT_WORDS = {
    "positive": ["great", "amazing", "love it", "so happy", "best day"],
    "negative": ["awful", "so annoyed", "worst", "terrible", "ugh"],
    "neutral": ["at 7pm", "on Thursday", "link below", "as announced", "this week"],
}


# --- data ---------------------------------------------------------------------------------------


def synthetic_rows(n: int, seed: int, prefix: str = "syn") -> list[dict[str, str]]:
    """Tweet-like texts with a gold label each (3 classes), the same for the same seed."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = rng.choice(sorted(SENTIMENT_WORDS))
        words = rng.choices(VOCABULARY, k=rng.randint(8, 18))
        words.insert(rng.randrange(len(words)), rng.choice(SENTIMENT_WORDS[label]))
        rows.append({"id": f"{prefix}-{i:07d}", "text": " ".join(words), "label": label})
    return rows


def load_rows(data: Path | None, n: int, seed: int) -> tuple[list[dict[str, str]], str]:
    """The first `n` labelled rows of `data` sorted by id (ids suffixed when the file is cycled),
    or synthetic rows when there is no data file."""
    if data is None or not data.is_file():
        return synthetic_rows(n, seed), "synthetic"
    with data.open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    rows = sorted((r for r in rows if r.get("label") is not None), key=lambda r: str(r["id"]))
    picked = []
    for i in range(n):
        row = rows[i % len(rows)]
        suffix = "" if i < len(rows) else f"-r{i // len(rows)}"
        picked.append({"id": f"{row['id']}{suffix}", "text": row["text"], "label": row["label"]})
    return picked, f"{data} (first {min(n, len(rows))} by id{', cycled' if n > len(rows) else ''})"


def write_inputs(rows: list[dict[str, str]], folder: Path) -> tuple[Path, Path]:
    """items.jsonl (id, text) to label and gold.jsonl (id, label) for the server."""
    folder.mkdir(parents=True, exist_ok=True)
    items, gold = folder / "items.jsonl", folder / "gold.jsonl"
    with items.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({"id": row["id"], "text": row["text"]}, ensure_ascii=False) + "\n")
    with gold.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({"id": row["id"], "label": row["label"]}) + "\n")
    return items, gold


def read_items(path: Path) -> list[Item]:
    with path.open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [
        Item(item_id=r["id"], fields={"text": r["text"]}, line=i + 1) for i, r in enumerate(rows)
    ]


# --- the simulated server, as a separate process -------------------------------------------------


@dataclass
class Server:
    url: str
    process: subprocess.Popen

    def cpu_seconds(self) -> float | None:
        """User + system CPU the server process has used so far (Linux /proc), else None."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def sim_server(
    gold: Path,
    latency_ms: float,
    accuracy: float,
    seed: int,
    rpm: int | None = None,
    flags: tuple[str, ...] = (),
) -> Iterator[Server]:
    """`flags`: the server's switches, e.g. `--no-n`, `--prompt-cache`."""
    options = {"--port": 0, "--gold": gold, "--latency-ms": latency_ms, "--accuracy": accuracy}
    if rpm:
        options["--rpm"] = rpm
    command = [sys.executable, "-m", "labelagent.simserver", "--no-history", "--seed", str(seed)]
    command += [str(part) for option in options.items() for part in option] + list(flags)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        line = process.stdout.readline() if process.stdout else ""
        found = URL_LINE.search(line)
        if not found:
            raise RuntimeError(f"the simulated server did not start: {line!r}")
        yield Server(found.group(1), process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- labelagent's real path -------------------------------------------------------------------


@dataclass
class Measured:
    """One timed phase: wall and CPU seconds (this process; the server's), requests, samples."""

    wall: float = 0.0
    cpu: float = 0.0
    server_cpu: float | None = None
    requests: int = 0
    samples: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def measuring(server: Server | None) -> Iterator[Measured]:
    """Times the block: fills wall, this process's CPU and the server's CPU into the result."""
    result = Measured()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    server0 = server.cpu_seconds() if server else None
    started = time.perf_counter()
    yield result
    result.wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.cpu = usage.ru_utime + usage.ru_stime - cpu0
    server1 = server.cpu_seconds() if server else None
    result.server_cpu = None if server0 is None or server1 is None else server1 - server0


def make_backend(url: str, mode: str, concurrency: int, transport: str = "openai") -> Any:
    from labelagent.llm import RemoteBackend

    return RemoteBackend(
        "openai/sim",
        api_base=url,
        api_key="sim",
        mode=mode,
        concurrency=concurrency,
        transport=transport,
    )


def run_labeler(
    url: str,
    input_path: Path,
    db: Path,
    settings: dict[str, Any],
    mode: str,
    concurrency: int,
    server: Server | None = None,
    on_progress: Callable[[Any], None] | None = None,
    transport: str = "openai",
) -> Measured:
    """A real labelagent run (Labeler, RemoteBackend, DuckDB log), timed around `run`."""
    from labelagent.calibration.rule import Thresholds
    from labelagent.pipeline import Labeler, RunSettings

    backend = make_backend(url, mode, concurrency, transport)
    guideline = load_guideline(GUIDELINE)
    labeler = Labeler(
        db,
        guideline,
        [backend],
        RunSettings(**settings),
        Thresholds(),
        concurrency=concurrency,
        on_progress=on_progress,
    )
    with measuring(server) as measured:
        progress = labeler.run(input_path)
    measured.requests, measured.samples = backend.requests, progress.requests_samples
    measured.extra = {
        "done": progress.done,
        "auto": progress.auto,
        "escalated": progress.escalated,
        "waiting": progress.waiting,
        "window": backend.flow.window,
        "cuts": backend.flow.cuts,
    }
    return measured


def stored_drafts(db: Path) -> dict[str, list[tuple[Any, str | None]]]:
    """Per item, its drafts in sample order as (label, error)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = drafts_in_order(con)
    finally:
        con.close()
    drafts: dict[str, list[tuple[Any, str | None]]] = {}
    for d in rows:
        label = None if d.label is None else json.loads(d.label)
        drafts.setdefault(d.item_id, []).append((label, d.error))
    return drafts


def stored_decisions(db: Path) -> dict[str, tuple[Any, int]]:
    """Per item, (majority label, number of samples) as labelagent decided it."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = decided_labels(con)
    finally:
        con.close()
    return {
        d.item_id: (None if d.label is None else json.loads(d.label), d.n_samples) for d in rows
    }


# --- the request sequence labelagent makes per item -----------------------------------------------


def request_plan(n_samples: int, k: int, stop_confidence: float, audit_seed: int = 0) -> list:
    """The (n, seed) of each request labelagent makes for an item that ended with `n_samples`
    samples: the pipeline's own `next_batch`, seeds as in `Labeler._sample_model`."""
    plan, drawn = [], 0
    while drawn < n_samples:
        placeholder = [Sample(model="x", label="x")] * drawn
        n = min(next_batch(placeholder, k, stop_confidence), k - drawn)
        plan.append((n, audit_seed * 1000 + drawn))
        drawn += n
    return plan


# --- the bare client ----------------------------------------------------------------------------


@dataclass
class Template:
    """What labelagent sends, minus the per-request parts (item message, n, seed)."""

    head: list[dict[str, Any]]  # messages before the item's own (instructor may edit the system)
    body: dict[str, Any]  # model, temperature, tools/tool_choice or response_format, ...


def capture_template(mode: str, guideline: Guideline, folder: Path) -> Template:
    """Run labelagent on one item against an in-process SimServer that keeps history, and keep
    the request body it sent."""
    from labelagent.simserver import SimConfig, SimServer

    rows = synthetic_rows(1, 0)
    items, _ = write_inputs(rows, folder)
    gold = {rows[0]["id"]: {"label": rows[0]["label"]}}
    with SimServer(SimConfig(gold=gold, accuracy=1.0)) as server:
        run_labeler(server.url, items, folder / "capture.duckdb", {}, mode, 1)
        body = dict(server.history[0])
    messages = body.pop("messages")
    expected = build_messages(guideline, read_items(items)[0])[-1]
    if messages[-1] != expected:
        raise RuntimeError("labelagent's last message is not the item's; cannot replay it")
    for key in ("n", "seed"):
        body.pop(key, None)
    return Template(messages[:-1], body)


_CREATE_PARAMS = {
    "model",
    "messages",
    "n",
    "seed",
    "temperature",
    "tools",
    "tool_choice",
    "response_format",
    "max_tokens",
    "top_p",
    "stop",
}


def request_kwargs(template: Template, user: dict[str, str], n: int, seed: int) -> dict:
    """The body as `chat.completions.create` arguments; `n` only when above 1, as litellm does."""
    body = {**template.body, "messages": [*template.head, user], "seed": seed}
    if n > 1:
        body["n"] = n
    known = {k: v for k, v in body.items() if k in _CREATE_PARAMS}
    extra = {k: v for k, v in body.items() if k not in _CREATE_PARAMS}
    return {**known, "extra_body": extra} if extra else known


def bare_sender(url: str, kind: str) -> tuple[Callable[..., Any], Callable[[], Any]]:
    """The bare client's create call and its close: `openai.AsyncOpenAI` on labelagent's own
    transport (httpx over aiohttp: httpx's pool costs ~5x the CPU), or `litellm.acompletion`
    with the openai provider."""
    if kind == "openai":
        import httpx
        import openai

        from labelagent.transports.aiohttp_http import AiohttpTransport

        http = httpx.AsyncClient(transport=AiohttpTransport(), timeout=60.0)
        client = openai.AsyncOpenAI(
            base_url=url, api_key="sim", max_retries=0, timeout=60.0, http_client=http
        )
        return client.chat.completions.create, client.close
    import litellm

    async def acompletion(**kwargs: Any) -> Any:
        extra = kwargs.pop("extra_body", {})
        model = "openai/" + kwargs.pop("model")
        return await litellm.acompletion(
            model=model, api_base=url, api_key="sim", num_retries=0, timeout=60.0,
            **kwargs, **extra,
        )  # fmt: skip

    async def nothing() -> None:
        return None

    return acompletion, nothing


async def bare_replay(
    url: str,
    kind: str,
    jobs: list[tuple[dict[str, str], list[tuple[int, int]]]],
    template: Template,
    concurrency: int,
) -> tuple[int, int, list[list[Any]]]:
    """Per item its requests one after another, `concurrency` items at once (as labelagent's
    workers). Returns requests, choices received, and each item's responses (unparsed)."""
    create, close = bare_sender(url, kind)
    queue: asyncio.Queue = asyncio.Queue()
    for index, job in enumerate(jobs):
        queue.put_nowait((index, job))
    responses: list[list[Any]] = [[] for _ in jobs]
    counts: Counter[str] = Counter()

    async def worker() -> None:
        while not queue.empty():
            index, (user, plan) = queue.get_nowait()
            for n, seed in plan:
                response = await create(**request_kwargs(template, user, n, seed))
                counts["requests"] += 1
                counts["choices"] += len(response.choices)
                responses[index].append(response)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await close()
    return counts["requests"], counts["choices"], responses


def response_labels(responses: list[Any]) -> list[Any]:
    """The labels in the bare client's answers (after timing: the bare client parses nothing)."""
    labels = []
    for response in responses:
        for choice in response.choices:
            message = choice.message
            raw = (
                message.tool_calls[0].function.arguments if message.tool_calls else message.content
            )
            try:
                labels.append(json.loads(raw).get("label"))
            except (TypeError, ValueError, AttributeError):
                labels.append(None)
    return labels


# --- 1. overhead ----------------------------------------------------------------------------


@dataclass
class OverheadSetup:
    """One latency's timed rounds: its server, items and the arms compared there."""

    name: str
    latency: float
    server: Server
    items_path: Path
    warm_path: Path
    folder: Path
    template: Template
    users: dict[str, dict[str, str]]
    settings: dict[str, Any]
    pairs: list[str]


def overhead(args: argparse.Namespace, folder: Path) -> None:
    """At 200 ms (openai and litellm pairs) and at 1,500 ms (openai pair), rounds interleaved:
    each round runs every arm of both latencies, labelagent then its bare client, in turn."""
    template = capture_template(args.mode, load_guideline(GUIDELINE), folder / "capture")
    plans = [
        (f"{args.latency_ms:,.0f} ms", args.items, args.latency_ms, args.pairs or list(PAIRS)),
        (f"{args.long_latency_ms:,.0f} ms", args.long_items, args.long_latency_ms, ["openai"]),
    ]
    with ExitStack() as servers:
        setups = [
            _prepare(args, folder / f"latency-{i}", template, plan, servers)
            for i, plan in enumerate(plans)
            if plan[1] > 0
        ]
        for setup in setups:
            _warm_up(setup, args)
        runs: dict[str, dict[str, list[Measured]]] = {s.name: {} for s in setups}
        checks: dict[str, dict[str, Any]] = {s.name: {} for s in setups}
        for round_ in range(args.repeats):
            for setup in setups:
                _overhead_round(setup, args, round_, runs[setup.name], checks[setup.name])
    _report_comparisons([(s, _report_overhead(s, runs[s.name], checks[s.name])) for s in setups])


def _prepare(
    args: argparse.Namespace,
    folder: Path,
    template: Template,
    plan: tuple[str, int, float, list[str]],
    servers: ExitStack,
) -> OverheadSetup:
    name, n_items, latency, pairs = plan
    guideline = load_guideline(GUIDELINE)
    rows, source = load_rows(args.data, n_items, args.seed)
    warm_rows = synthetic_rows(args.warmup, args.seed + 1, prefix="warm")
    items_path, _ = write_inputs(rows, folder)
    warm_path, _ = write_inputs(warm_rows, folder / "warm")
    gold_path = write_inputs(warm_rows + rows, folder / "all")[1]  # one gold table for both
    settings = {
        "samples": args.samples,
        "stop_confidence": args.stop_confidence,
        "flush_seconds": args.flush_seconds,
    }
    print(
        f"\n== 1. overhead at {name}: labelagent vs a bare client, {len(rows)} items from {source}"
    )
    print(
        f"   K={args.samples}, stop_confidence={args.stop_confidence}, concurrency "
        f"{args.concurrency}, server latency {latency:g} ms, mode {args.mode}, "
        f"{args.warmup} warm-up items first (not counted), log written every "
        f"{args.flush_seconds:g} s; {args.repeats} round(s), interleaved with the other "
        f"latency's: {', '.join(f'{a} then {b}' for a, b in (PAIRS[p] for p in pairs))}"
    )
    users = {i.item_id: build_messages(guideline, i)[-1] for i in read_items(items_path)}
    setup_seconds = time_setup(items_path, folder / "setup.duckdb")
    print(f"   labelagent's setup alone (scan, migrate, insert items): {setup_seconds:.2f} s")
    server = servers.enter_context(sim_server(gold_path, latency, args.accuracy, args.seed))
    return OverheadSetup(
        name, latency, server, items_path, warm_path, folder, template, users, settings, pairs
    )


def time_setup(items_path: Path, db: Path) -> float:
    """What a run does before its first request (scan, migrate, insert the items), timed alone."""
    from labelagent import inputs
    from labelagent.store import log
    from labelagent.store.db import migrate

    started = time.perf_counter()
    keys = inputs.ItemKeys()
    summary = inputs.scan(items_path, ["text"], keys=keys)
    migrate(db)
    log.check_ids(db, str(summary.path), keys, summary.n_items)
    for chunk in inputs.iter_items(summary.path, "id", summary.id_source, 500):
        log.insert_items(db, summary.dataset, chunk)
    return time.perf_counter() - started


def _warm_up(setup: OverheadSetup, args: Any) -> None:
    """Warm each client's lazy imports and caches (not timed)."""
    if args.warmup <= 0:
        return
    url = setup.server.url
    guideline = load_guideline(GUIDELINE)
    jobs = [(build_messages(guideline, i)[-1], [(2, 0)]) for i in read_items(setup.warm_path)]
    for kind in setup.pairs:
        db = setup.folder / f"warm-{kind}.duckdb"
        run_labeler(
            url, setup.warm_path, db, setup.settings, args.mode, args.concurrency, transport=kind
        )
        asyncio.run(bare_replay(url, kind, jobs, setup.template, args.concurrency))


def _overhead_round(
    setup: OverheadSetup,
    args: Any,
    round_: int,
    runs: dict[str, list[Measured]],
    check: dict[str, Any],
) -> None:
    """Each pair once: labelagent, then the bare client replaying the requests it made."""
    server = setup.server
    for kind in setup.pairs:
        ours_name, bare_name = PAIRS[kind]
        db = setup.folder / f"overhead-{kind}-{round_}.duckdb"
        ours = run_labeler(
            server.url,
            setup.items_path,
            db,
            setup.settings,
            args.mode,
            args.concurrency,
            server,
            transport=kind,
        )
        runs.setdefault(ours_name, []).append(ours)
        drafts = stored_drafts(db)
        ids = list(setup.users)
        plans = [request_plan(len(drafts[i]), args.samples, args.stop_confidence) for i in ids]
        jobs = list(zip((setup.users[i] for i in ids), plans, strict=True))
        with measuring(server) as measured:
            requests, choices, responses = asyncio.run(
                bare_replay(server.url, kind, jobs, setup.template, args.concurrency)
            )
        measured.requests, measured.samples = requests, choices
        runs.setdefault(bare_name, []).append(measured)
        if round_ == 0:
            check[kind] = _compare_answers(ids, drafts, responses)


def _compare_answers(
    ids: list[str], drafts: dict[str, list[tuple[Any, str | None]]], responses: list[list[Any]]
) -> dict[str, Any]:
    same = total = 0
    for item_id, answered in zip(ids, responses, strict=True):
        theirs = [label for label, _ in drafts[item_id]]
        mine = response_labels(answered)
        total += len(theirs)
        same += sum(a == b for a, b in zip(theirs, mine, strict=False))
    failed = sum(error is not None for d in drafts.values() for _, error in d)
    return {"same": same, "total": total, "failed": failed}


def _report_overhead(
    setup: OverheadSetup, runs: dict[str, list[Measured]], check: dict[str, Any]
) -> dict[str, tuple[float, float]]:
    """Prints the latency's figures; returns per pair (CPU ratio, wall ratio), medians."""
    walls = {name: statistics.median(m.wall for m in measured) for name, measured in runs.items()}
    per_request = {
        name: statistics.median(m.cpu / m.requests for m in measured)
        for name, measured in runs.items()
    }
    print(f"\n== 1. overhead at {setup.name}: results")
    for name, measured in runs.items():
        m, wall = measured[0], walls[name]
        server_cpu = "n/a" if m.server_cpu is None else f"{m.server_cpu:.1f} s"
        each = ", ".join(f"{r.wall:.1f}" for r in measured)
        window = f" | window {m.extra['window']:.0f}" if "window" in m.extra else ""
        print(
            f"   {name:<18} wall {wall:7.2f} s (runs {each})"
            f" | {m.requests} requests, {m.samples} samples | {m.requests / wall:5.1f} req/s"
        )
        print(
            f"   {'':<18} CPU: client {per_request[name] * 1000:.2f} ms/request,"
            f" server {server_cpu}{window}"
        )
    ratios = {}
    for kind in setup.pairs:
        ours, bare = PAIRS[kind]
        c = check[kind]
        print(
            f"   {ours} vs {bare}: {c['same']}/{c['total']} samples got the same answer "
            f"({c['failed']} failed samples in labelagent's run)"
        )
        ratios[kind] = (per_request[ours] / per_request[bare], walls[ours] / walls[bare])
    return ratios


def _report_comparisons(
    results: list[tuple[OverheadSetup, dict[str, tuple[float, float]]]],
) -> None:
    """The issue's comparisons, all from the one interleaved run: CPU per request against each
    bare client, and wall time against bare openai at each latency."""
    print("\n== 1. overhead: the comparisons (labelagent / bare, medians over rounds)")
    for setup, ratios in results:
        long = setup.latency >= 1000
        for kind, (cpu, wall) in ratios.items():
            bare = PAIRS[kind][1]
            cpu_target = None if long else TARGET_CPU[kind]
            _comparison(f"CPU per request vs {bare}, {setup.name}", cpu, cpu_target)
            if kind == "openai":
                _comparison(
                    f"wall time vs {bare}, {setup.name}",
                    wall,
                    TARGET_LONG_WALL if long else TARGET_WALL,
                )


def _comparison(what: str, ratio: float, target: float | None) -> None:
    goal = "(no target)" if target is None else f"target <= {target}  {_flag(ratio <= target)}"
    print(f"   {what:<42} {ratio:6.3f}  {goal}")


# --- rate limit -------------------------------------------------------------------------------


def ratelimit(args: argparse.Namespace, folder: Path) -> None:
    """labelagent's default settings (concurrency, no --rpm) against a server that enforces a
    limit: requests per minute achieved, 429s, failed samples."""
    rows = synthetic_rows(args.ratelimit_items, args.seed)
    items_path, gold_path = write_inputs(rows, folder)
    rpm = args.ratelimit_rpm
    print(
        f"\n== 1. ratelimit: {len(rows)} items, server limit {rpm} requests/min (429 beyond, "
        f"x-ratelimit-* headers), latency {args.latency_ms:g} ms, labelagent's defaults "
        f"(concurrency {DEFAULT_CONCURRENCY}, no --rpm)"
    )
    settings = {"samples": args.samples, "stop_confidence": args.stop_confidence}
    with sim_server(gold_path, args.latency_ms, args.accuracy, args.seed, rpm) as server:
        db = folder / "ratelimit.duckdb"
        m = run_labeler(server.url, items_path, db, settings, "json", DEFAULT_CONCURRENCY, server)
    drafts = stored_drafts(db)
    failed = sum(error is not None for d in drafts.values() for _, error in d)
    decided = len(stored_decisions(db))
    answered = sum(
        len(request_plan(len(d), args.samples, args.stop_confidence)) for d in drafts.values()
    )
    achieved = answered / m.wall * 60
    share = achieved / rpm
    print(
        f"   {m.requests} requests sent ({answered} answered, {m.requests - answered} refused) "
        f"in {m.wall:.1f} s; "
        f"{decided} items decided, {m.extra['waiting']} waiting, {failed} failed samples; "
        f"{m.extra['cuts']} window cuts on 429"
    )
    ok = share >= TARGET_RATE_SHARE and failed == 0 and m.extra["waiting"] == 0
    print(
        f"   achieved {achieved:.0f} requests/min = {share:.1%} of the limit "
        f"(target >= {TARGET_RATE_SHARE:.0%}, no failed sample) {_flag(ok)}"
    )


def _flag(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --- 2. adaptive vs fixed K ----------------------------------------------------------------------


async def extend_to_k(
    url: str, mode: str, concurrency: int, items: list[Item], k: int, stop_confidence: float
) -> dict[str, list[Sample]]:
    """K samples per item drawn with labelagent's own request sequence (the same `n` and seeds as
    the adaptive loop, just never stopping early), through `RemoteBackend.sample`."""
    guideline = load_guideline(GUIDELINE)
    backend = make_backend(url, mode, concurrency)
    limit = asyncio.Semaphore(concurrency)

    async def draw(item: Item) -> list[Sample]:
        messages, samples = build_messages(guideline, item), []
        async with limit:
            for n, seed in request_plan(k, k, stop_confidence):
                request = SampleRequest(
                    guideline=guideline, item=item, messages=messages, n=n, seed=seed
                )
                samples.extend((await backend.sample(request))[:n])
        return samples

    drawn = await asyncio.gather(*(draw(item) for item in items))
    await backend.aclose()
    return {item.item_id: samples for item, samples in zip(items, drawn, strict=True)}


def majority(samples: list[Sample]) -> Any:
    guideline = load_guideline(GUIDELINE)
    valid = [s.label for s in samples if s.ok]
    return aggregate(guideline, valid)[0] if valid else None


@dataclass
class AdaptiveResult:
    stop_confidence: float
    mean_samples: float
    fixed_mean_samples: float
    agree: float
    prefix_ok: float
    accuracy: float
    fixed_accuracy: float
    requests: int
    wall: float


def adaptive(args: argparse.Namespace, folder: Path) -> None:
    rows, source = load_rows(args.data, args.adaptive_items, args.seed)
    items_path, gold_path = write_inputs(rows, folder)
    gold = {r["id"]: r["label"] for r in rows}
    print(f"\n== 2. adaptive vs fixed K: {len(rows)} items from {source}")
    print(
        f"   simulated accuracy {args.accuracy}, 3 classes, K={args.samples}, latency 0 ms, "
        f"concurrency {args.concurrency}"
    )
    with sim_server(gold_path, 0.0, args.accuracy, args.seed) as server:
        results = [
            _adaptive_one(server.url, items_path, folder, gold, confidence, args)
            for confidence in (args.stop_confidence, 1.0)
        ]
    for r in results:
        _report_adaptive(r, args.samples)


def _adaptive_one(
    url: str, items_path: Path, folder: Path, gold: dict[str, Any], confidence: float, args: Any
) -> AdaptiveResult:
    db = folder / f"adaptive-{confidence}.duckdb"
    settings = {"samples": args.samples, "stop_confidence": confidence}
    measured = run_labeler(url, items_path, db, settings, args.mode, args.concurrency)
    decisions, drafts = stored_decisions(db), stored_drafts(db)
    fixed = asyncio.run(
        extend_to_k(
            url, args.mode, args.concurrency, read_items(items_path), args.samples, confidence
        )
    )
    ids = list(decisions)
    prefix = sum(
        [label for label, _ in drafts[i]] == [s.label for s in fixed[i][: len(drafts[i])]]
        for i in ids
    )
    fixed_majority = {i: majority(fixed[i]) for i in ids}
    return AdaptiveResult(
        stop_confidence=confidence,
        mean_samples=statistics.mean(decisions[i][1] for i in ids),
        fixed_mean_samples=statistics.mean(len(fixed[i]) for i in ids),
        agree=sum(decisions[i][0] == fixed_majority[i] for i in ids) / len(ids),
        prefix_ok=prefix / len(ids),
        accuracy=sum(decisions[i][0] == gold[i] for i in ids) / len(ids),
        fixed_accuracy=sum(fixed_majority[i] == gold[i] for i in ids) / len(ids),
        requests=measured.requests,
        wall=measured.wall,
    )


def _report_adaptive(r: AdaptiveResult, k: int) -> None:
    share = r.mean_samples / r.fixed_mean_samples
    reference = r.stop_confidence >= 1.0
    print(
        f"   stop_confidence={r.stop_confidence:g}{' (reference)' if reference else ''}: "
        f"{r.mean_samples:.3f} samples/item vs fixed K={k}: {r.fixed_mean_samples:.3f} "
        f"-> {share:.1%}"
        + ("" if reference else f" (target <= 60%) {_flag(share <= TARGET_ADAPTIVE_SHARE)}")
    )
    print(
        f"      same majority as fixed K: {r.agree:.2%}"
        + ("" if reference else f" (target >= 99%) {_flag(r.agree >= TARGET_AGREEMENT)}")
        + f" | adaptive samples a prefix of the fixed-K ones: {r.prefix_ok:.2%}"
    )
    print(
        f"      accuracy vs gold: adaptive {r.accuracy:.2%}, fixed K {r.fixed_accuracy:.2%}"
        f" | {r.requests} requests in {r.wall:.1f} s"
    )


# --- 2. rounds: dollars per item ------------------------------------------------------------------


@dataclass
class RoundsResult:
    schedule: str
    items: int
    dollars: float
    requests: int
    samples: int
    prompt_tokens: int
    cached_tokens: int
    labels: dict[str, Any]
    costs: Any  # the backend's RoundCosts at the end


def rounds(args: argparse.Namespace, folder: Path) -> None:
    """Each schedule on a fresh server (its prompt cache starts empty), interleaved per
    provider."""
    from labelagent import prices

    rows, source = load_rows(args.data, args.rounds_items, args.seed)
    items_path, gold_path = write_inputs(rows, folder)
    info = prices.model_info(PRICED_MODEL) or {}
    fresh, cached, answer = (
        1e6 * float(info.get(key) or 0.0)
        for key in ("input_cost_per_token", "cache_read_input_token_cost", "output_cost_per_token")
    )
    print(f"\n== 2. rounds: dollars per item, {len(rows)} items from {source}")
    print(
        f"   {PRICED_MODEL} prices per million tokens: input ${fresh:.3f}, cached input "
        f"${cached:.3f}, output ${answer:.3f}; guideline {GUIDELINE.name} "
        f"({len(load_guideline(GUIDELINE).body)} characters); K={args.samples}, "
        f"stop_confidence={args.stop_confidence}, accuracy {args.accuracy}, tokens counted as "
        "4 characters"
    )
    for flags, title in (
        ((), "honours n"),
        (("--no-n",), "ignores n"),
        (("--prompt-cache",), "honours n, prompt cache"),
        (("--no-n", "--prompt-cache"), "ignores n, prompt cache"),
    ):
        results = []
        for schedule in SCHEDULES:
            with sim_server(gold_path, 0.0, args.accuracy, args.seed, flags=flags) as server:
                db = folder / f"rounds-{'-'.join(flags) or 'n'}-{schedule.replace(' ', '-')}.duckdb"
                results.append(_rounds_one(server.url, items_path, db, schedule, args))
        _report_rounds(title, results)


def _rounds_one(url: str, items_path: Path, db: Path, schedule: str, args: Any) -> RoundsResult:
    from labelagent.calibration.rule import Thresholds
    from labelagent.llm import RemoteBackend
    from labelagent.pipeline import Labeler, RunSettings

    class AdaptiveOnly(RemoteBackend):
        """Knows no costs, so `round_size` keeps the adaptive schedule (`next_batch`)."""

        def round_costs(self) -> None:
            return None

    kind = AdaptiveOnly if schedule == "adaptive" else RemoteBackend
    backend = kind(
        PRICED_MODEL, api_base=url, api_key="sim", mode=args.mode, concurrency=args.concurrency
    )
    settings = RunSettings(
        samples=args.samples,
        stop_confidence=args.stop_confidence,
        early_stop=schedule != "fixed K",
    )
    labeler = Labeler(
        db, load_guideline(GUIDELINE), [backend], settings, Thresholds(), args.concurrency
    )
    progress = labeler.run(items_path)
    con = duckdb.connect(str(db), read_only=True)
    try:
        drafts = draft_costs(con)
        labels = {d.item_id: d.label for d in decided_labels(con)}
    finally:
        con.close()
    dollars = sum(d.cost_usd or 0.0 for d in drafts)
    prompt = sum(d.prompt_tokens or 0 for d in drafts)
    cached = sum(d.cached_prompt_tokens or 0 for d in drafts)
    return RoundsResult(
        schedule, progress.done, dollars, backend.requests, progress.requests_samples,
        prompt, cached, labels, backend.round_costs(),
    )  # fmt: skip


def _report_rounds(title: str, results: list[RoundsResult]) -> None:
    fixed = results[0]
    costs = results[1].costs
    ratio = (
        "" if costs is None else f"; one prompt = {costs.prompt_usd / costs.sample_usd:.1f} answers"
    )
    print(f"   provider {title}{ratio}:")
    for r in results:
        same = sum(r.labels[i] == fixed.labels[i] for i in fixed.labels) / len(fixed.labels)
        per_item = r.dollars / r.items
        line = (
            f"      {r.schedule:<14} ${per_item:.7f} per item"
            f" ({per_item / (fixed.dollars / fixed.items):6.1%} of fixed K)"
            f" | {r.requests / r.items:.2f} requests, {r.samples / r.items:.2f} samples per item"
            f" | cached {r.cached_tokens / max(1, r.prompt_tokens):5.1%} of prompt tokens"
            f" | same label as fixed K {same:.2%}"
        )
        if r.schedule == "dollar rounds":
            ok = per_item <= fixed.dollars / fixed.items * 1.0001 and same >= TARGET_AGREEMENT
            line += f" (target <= fixed K's $, >= 99%) {_flag(ok)}"
        print(line)


# --- 3. memory ------------------------------------------------------------------------------------


def _rss_mb() -> float:
    """Current resident set size of this process, MB (Linux), else the peak so far."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_mb() -> float:
    """Peak resident set size of this process, MB: VmHWM (Linux), else ru_maxrss. ru_maxrss
    survives exec on Linux, so a spawned child would report its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(job: dict[str, Any], results: Any) -> None:
    """In a fresh process: label the file, report peak RSS, wall time and an RSS timeline."""
    # loaded before the baseline: the pipeline, and instructor (the tools mode's schema builder)
    import instructor  # noqa: F401

    import labelagent.pipeline  # noqa: F401

    baseline = _rss_mb()
    timeline: list[tuple[int, float]] = []
    step = max(1, job["items"] // 10)

    def sample_rss(progress: Any) -> None:
        if (
            progress.done
            and progress.done % step == 0
            and progress.done != (timeline or [(0,)])[-1][0]
        ):
            timeline.append((progress.done, _rss_mb()))

    measured = run_labeler(
        job["url"],
        Path(job["input"]),
        Path(job["db"]),
        job["settings"],
        job["mode"],
        job["concurrency"],
        on_progress=sample_rss,
    )
    results.put(
        {
            "wall": measured.wall,
            "cpu": measured.cpu,
            "requests": measured.requests,
            "samples": measured.samples,
            "done": measured.extra["done"],
            "baseline_mb": baseline,
            "peak_mb": _peak_rss_mb(),
            "timeline": timeline,
        }
    )


def run_child(job: dict[str, Any]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=memory_child, args=(job, results))
    child.start()
    outcome = results.get()
    child.join()
    return outcome


def memory(args: argparse.Namespace, folder: Path) -> None:
    rows = synthetic_rows(args.memory_items, args.seed)
    items_path, gold_path = write_inputs(rows, folder)
    del rows
    size_mb = items_path.stat().st_size / 2**20
    print(
        f"\n== 3. peak memory: {args.memory_items} synthetic items ({size_mb:.1f} MB JSONL), "
        f"streamed; K={args.samples}, latency 0 ms, concurrency {args.concurrency}"
    )
    settings = {"samples": args.samples, "stop_confidence": args.stop_confidence}
    job = {
        "input": str(items_path),
        "settings": settings,
        "mode": args.mode,
        "concurrency": args.concurrency,
    }
    with sim_server(gold_path, 0.0, args.accuracy, args.seed) as server:
        job["url"] = server.url
        estimate_items = min(args.estimate_items, args.memory_items)
        estimate = run_child(
            {
                **job,
                "db": str(folder / "estimate.duckdb"),
                "items": estimate_items,
                "settings": {**settings, "limit": estimate_items},
            }
        )
        if estimate_items >= args.memory_items:
            _report_memory(estimate, f"all {args.memory_items} items")
            return
        _report_memory(estimate, f"first {estimate_items} items only (RunSettings.limit)")
        projected = estimate["wall"] * args.memory_items / estimate_items
        print(f"   projected for all {args.memory_items} items: ~{projected:.0f} s")
        if projected > args.memory_max_seconds:
            print(f"   full run skipped: projected {projected:.0f} s > --memory-max-seconds")
            return
        full = run_child({**job, "db": str(folder / "memory.duckdb"), "items": args.memory_items})
    _report_memory(full, f"all {args.memory_items} items")


def _report_memory(r: dict[str, Any], title: str) -> None:
    print(
        f"   {title}: {r['done']} items, {r['requests']} requests, {r['samples']} samples in "
        f"{r['wall']:.1f} s ({r['requests'] / r['wall']:.0f} req/s, client CPU {r['cpu']:.0f} s)"
    )
    timeline = ", ".join(f"{done}: {mb:.0f}" for done, mb in r["timeline"])
    print(f"   RSS once labelagent is imported {r['baseline_mb']:.0f} MB")
    print(f"   RSS by items done (MB): {timeline}")
    ok = r["peak_mb"] < TARGET_RSS_MB
    print(f"   peak RSS {r['peak_mb']:.0f} MB (target < {TARGET_RSS_MB:.0f} MB) {_flag(ok)}")


# --- 4. startup -----------------------------------------------------------------------------


def startup(args: argparse.Namespace, folder: Path) -> None:
    """`labelagent --help` in a fresh interpreter: best of five (the machine is shared)."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "labelagent.cli", "--help"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        times.append(time.perf_counter() - started)
    best = min(times)
    print(
        f"\n== 4. startup: labelagent --help {best:.2f} s best of 5 "
        f"(median {statistics.median(times):.2f} s; target < {TARGET_HELP_SECONDS} s) "
        f"{_flag(best < TARGET_HELP_SECONDS)}"
    )


# --- command line -------------------------------------------------------------------------------


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--only",
        action="append",
        choices=STEPS,
        help="run only this measurement (repeatable); default: all",
    )
    add("--items", type=int, default=5000, help="1. overhead: items")
    add("--warmup", type=int, default=64, help="1. overhead: warm-up items, not timed")
    add("--repeats", type=int, default=1, help="1. overhead: timed rounds (median reported)")
    add("--latency-ms", type=float, default=200.0, help="1. overhead: server latency")
    add(
        "--pairs",
        action="append",
        choices=tuple(PAIRS),
        help="1. overhead: labelagent/bare pairs, by transport (repeatable); default: both",
    )
    add(
        "--long-items",
        type=int,
        default=2000,
        help="1. overhead: items at the long latency (0: skip it)",
    )
    add("--long-latency-ms", type=float, default=1500.0, help="1. overhead: the long latency")
    add("--ratelimit-items", type=int, default=1500, help="1. ratelimit: items")
    add("--ratelimit-rpm", type=int, default=3000, help="1. ratelimit: the server's limit")
    add("--adaptive-items", type=int, default=2000, help="2. adaptive: items")
    add("--rounds-items", type=int, default=2000, help="2. rounds: items")
    add("--memory-items", type=int, default=100_000, help="3. memory: items")
    add("--estimate-items", type=int, default=2000, help="3. memory: items in the estimate run")
    add(
        "--memory-max-seconds",
        type=float,
        default=1500.0,
        help="3. memory: skip the full run when the estimate projects more",
    )
    add("--samples", type=int, default=5, help="K, most samples per item")
    add("--stop-confidence", type=float, default=0.85, help="adaptive stopping confidence")
    add("--concurrency", type=int, default=64, help="workers and requests in flight")
    add("--accuracy", type=float, default=0.9, help="simulated annotator accuracy")
    add(
        "--mode",
        default="tools",
        choices=("tools", "json_schema", "json"),
        help="structured output mode of RemoteBackend",
    )
    add("--seed", type=int, default=0, help="server and synthetic-data seed")
    add(
        "--flush-seconds",
        type=float,
        default=1.0,
        help="1. overhead: labelagent's RunSettings.flush_seconds (its log's writes)",
    )
    add(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="labelled JSONL (id, text, label) for 1 and 2; synthetic texts when missing",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    chosen = args.only or list(STEPS)
    steps = {
        "overhead": overhead,
        "ratelimit": ratelimit,
        "adaptive": adaptive,
        "rounds": rounds,
        "memory": memory,
        "startup": startup,
    }
    for name in chosen:
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as folder:
            steps[name](args, Path(folder))


if __name__ == "__main__":
    main()
