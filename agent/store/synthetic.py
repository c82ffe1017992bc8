"""Large logs built straight in SQL, without a labeling run, for evals/benchmarks/bench_review.py:
sentiment items with decisions, drafts and earlier reviews, and escalated span items."""

from duckdb import DuckDBPyConnection


def fill_sentiment(
    con: DuckDBPyConnection,
    guideline_hash: str,
    prompt_hash: str,
    n: int,
    escalated_per_100: int,
    drafts: int,
    reviewed: int,
) -> None:
    """A finished run 'bench' of `n` items b000000.., `escalated_per_100` of every 100
    escalated with `drafts` drafts each, the last `reviewed` of those accepted by 'earlier'."""
    con.execute(
        "INSERT INTO runs (run_id, command, dataset, guideline_hash, prompt_hash, model,"
        " jury, settings, started_at, finished_at, status) VALUES ('bench', 'label',"
        " 'bench.jsonl', ?, ?, 'openai/sim', '[]', '{}', now(), now(), 'finished')",
        [guideline_hash, prompt_hash],
    )
    con.execute(
        """
        INSERT INTO items (item_id, dataset, fields, content_hash)
        SELECT printf('b%06d', i), 'bench.jsonl',
               json_object('id', printf('b%06d', i), 'text',
                   'Message ' || i || ': the ' || ['bus', 'match', 'update', 'weather',
                   'concert', 'menu', 'election', 'phone'][i % 8 + 1] || ' was ' ||
                   ['late again', 'fine I guess', 'a surprise', 'on the news',
                    'exactly as expected'][i % 5 + 1]),
               md5(i::VARCHAR)
        FROM range(?) t(i)
        """,
        [n],
    )
    con.execute(
        """
        INSERT INTO decisions (item_id, guideline_hash, run_id, model, prompt_hash, label,
            route, reasons, agreement, confidence, n_samples, n_failed, votes,
            disagreeing_models, rule)
        SELECT printf('b%06d', i), ?, 'bench', 'openai/sim', ?,
               '"' || ['negative', 'neutral', 'positive'][i % 3 + 1] || '"',
               CASE WHEN i % 100 < ? THEN 'escalated' ELSE 'auto' END,
               CASE WHEN i % 100 < ? THEN '["low_agreement"]' ELSE '[]' END,
               CASE WHEN i % 100 < ? THEN 0.4 + (i % 4) * 0.1 ELSE 1.0 END,
               0.7, 5, 0, '{"\\"positive\\"": 3, "\\"negative\\"": 2}', '[]', '{}'
        FROM range(?) t(i)
        """,
        [guideline_hash, prompt_hash, escalated_per_100, escalated_per_100, escalated_per_100, n],
    )
    con.execute(
        """
        INSERT INTO drafts (item_id, guideline_hash, prompt_hash, model, sample_index,
            run_id, label, confidence, rationale, cost_usd, latency_ms)
        SELECT d.item_id, d.guideline_hash, d.prompt_hash, 'openai/sim', s.k, 'bench',
               d.label, 0.7, 'Sample ' || s.k || ': the wording is mixed.', 0, 100
        FROM decisions d, range(?) s(k)
        WHERE d.route = 'escalated'
        """,
        [drafts],
    )
    con.execute(
        """
        INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, blind,
                             seconds_on_screen, source)
        SELECT item_id, guideline_hash, 'earlier', label, 'accept', false, 4.2, 'review_ui'
        FROM decisions WHERE route = 'escalated' ORDER BY item_id DESC LIMIT ?
        """,
        [reviewed],
    )


def add_gold_reviews(con: DuckDBPyConnection) -> None:
    """Every decision's label imported again as a blind label of 'gold', for eval to compare."""
    con.execute(
        "INSERT INTO reviews (item_id, guideline_hash, reviewer, label, action, blind, source)"
        " SELECT item_id, guideline_hash, 'gold', label, 'import', true, 'import' FROM decisions"
    )


def add_span_items(
    con: DuckDBPyConnection, guideline_hash: str, prompt_hash: str, text: str, n: int
) -> None:
    """`n` items n000000.. whose text is `text` with {i} replaced by the number, each escalated
    for audit with no entities."""
    con.execute(
        "INSERT INTO items (item_id, dataset, fields, content_hash)"
        " SELECT printf('n%06d', i), 'bench.jsonl', json_object('id', printf('n%06d', i),"
        " 'text', replace(?, '{i}', CAST(i AS VARCHAR))), md5('n' || i) FROM range(?) t(i)",
        [text, n],
    )
    con.execute(
        """
        INSERT INTO decisions (item_id, guideline_hash, run_id, model, prompt_hash, label,
            route, reasons, agreement, confidence, n_samples, n_failed, votes,
            disagreeing_models, rule)
        SELECT printf('n%06d', i), ?, 'bench', 'openai/sim', ?, '[]', 'escalated',
               '["audit"]', 1.0, 0.7, 5, 0, '{"[]": 5}', '[]', '{}'
        FROM range(?) t(i)
        """,
        [guideline_hash, prompt_hash, n],
    )
