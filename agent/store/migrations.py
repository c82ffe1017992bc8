"""Numbered migrations of the log (DuckDB's SQL; store/postgres.py translates it for PostgreSQL).
Table and column names are a public interface: add columns and tables in new migrations, never
rename or drop in old ones."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "initial schema",
        """
CREATE TABLE guidelines (
    guideline_hash VARCHAR PRIMARY KEY, -- sha256 of the guideline file (16 hex digits)
    name VARCHAR NOT NULL,              -- the front matter's name
    task VARCHAR NOT NULL,              -- classification | multilabel | preference | rating | spans
    path VARCHAR,                       -- where the file was read from
    content VARCHAR NOT NULL,           -- the whole file, so every label can be traced to its text
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,
    command VARCHAR NOT NULL,           -- label | import-labels | demo
    dataset VARCHAR,                    -- input file name
    guideline_hash VARCHAR,
    prompt_hash VARCHAR,                -- hash of the prompt templates used
    model VARCHAR,                      -- the main model (litellm model string or local:...)
    jury JSON,                          -- further models that drafted too
    settings JSON,                      -- samples, temperature, thresholds, audit share, ...
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,              -- NULL while running or after a crash
    status VARCHAR NOT NULL             -- running | finished | stopped
);
CREATE TABLE items (
    item_id VARCHAR PRIMARY KEY,        -- from --id-field, else a hash of the fields
    dataset VARCHAR NOT NULL,
    fields JSON NOT NULL,               -- the item as read from the input
    content_hash VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE TABLE drafts (
    item_id VARCHAR NOT NULL,
    guideline_hash VARCHAR NOT NULL,
    prompt_hash VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    sample_index INTEGER NOT NULL,      -- 0..K-1 per item and model
    run_id VARCHAR NOT NULL,
    label JSON,                         -- NULL when the sample failed
    confidence DOUBLE,                  -- the model's own stated confidence, 0..1
    rationale VARCHAR,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost_usd DOUBLE,                    -- litellm's price table; 0 where unknown
    latency_ms DOUBLE,
    error VARCHAR,                      -- why the sample failed, else NULL
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (item_id, guideline_hash, prompt_hash, model, sample_index)
);
CREATE TABLE decisions (
    item_id VARCHAR NOT NULL,
    guideline_hash VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    prompt_hash VARCHAR NOT NULL,
    label JSON,                         -- the majority label; NULL when every sample failed
    route VARCHAR NOT NULL CHECK (route IN ('auto', 'escalated')),
    reasons JSON NOT NULL,              -- why escalated: low_agreement, low_confidence, low_support, jury_disagreement, failed_samples, model_failed, audit
    agreement DOUBLE,                   -- share of valid samples that agree with the majority
    confidence DOUBLE,                  -- mean stated confidence of the valid samples
    n_samples INTEGER NOT NULL,
    n_failed INTEGER NOT NULL,
    votes JSON NOT NULL,                -- {label as JSON: count}
    disagreeing_models JSON NOT NULL,   -- models whose own majority differs
    rule JSON NOT NULL,                 -- the thresholds used, and where they came from
    decided_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (item_id, guideline_hash)
);
CREATE TABLE decisions_history (
    item_id VARCHAR NOT NULL,
    guideline_hash VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    prompt_hash VARCHAR NOT NULL,
    label JSON,
    route VARCHAR NOT NULL,
    reasons JSON NOT NULL,
    agreement DOUBLE,
    confidence DOUBLE,
    n_samples INTEGER NOT NULL,
    n_failed INTEGER NOT NULL,
    votes JSON NOT NULL,
    disagreeing_models JSON NOT NULL,
    rule JSON NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    replaced_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE SEQUENCE reviews_seq;
CREATE TABLE reviews (
    review_id BIGINT PRIMARY KEY DEFAULT nextval('reviews_seq'),
    item_id VARCHAR NOT NULL,
    guideline_hash VARCHAR NOT NULL,
    reviewer VARCHAR NOT NULL,          -- a reviewer account, or the --annotator of an import
    label JSON,                         -- NULL for skip and flag
    action VARCHAR NOT NULL,            -- accept | correct | skip | flag | adjudicate | import
    note VARCHAR,
    blind BOOLEAN NOT NULL DEFAULT false, -- the reviewer did not see the model's label
    seconds_on_screen DOUBLE,
    source VARCHAR NOT NULL,            -- review_ui | import
    source_key VARCHAR UNIQUE,          -- makes an import idempotent: file, annotator and item
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE TABLE calibrations (
    calibration_id VARCHAR PRIMARY KEY,
    guideline_hash VARCHAR NOT NULL,
    rule JSON NOT NULL,                 -- {"min_agreement": .., "min_confidence": ..}
    details JSON,                       -- the data and targets it came from
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE VIEW final_labels AS
WITH latest_review AS (
    SELECT item_id, guideline_hash, label, reviewer, created_at,
           row_number() OVER (PARTITION BY item_id, guideline_hash
                              ORDER BY created_at DESC, review_id DESC) AS rn
    FROM reviews
    WHERE label IS NOT NULL
)
SELECT
    coalesce(r.item_id, d.item_id) AS item_id,
    coalesce(r.guideline_hash, d.guideline_hash) AS guideline_hash,
    coalesce(r.label, d.label) AS label,
    CASE WHEN r.item_id IS NOT NULL THEN 'human' ELSE 'llm' END AS source,
    r.reviewer AS reviewer,
    d.model AS model,
    d.route AS route,
    d.agreement AS agreement,
    d.confidence AS confidence,
    d.run_id AS run_id,
    coalesce(r.created_at, d.decided_at) AS labeled_at
FROM (SELECT * FROM latest_review WHERE rn = 1) r
FULL OUTER JOIN decisions d
    ON r.item_id = d.item_id AND r.guideline_hash = d.guideline_hash
WHERE r.item_id IS NOT NULL OR d.route = 'auto';
""",
    ),
    Migration(
        2,
        "review queue: reviewer accounts, claims, review settings; adjudication wins",
        """
CREATE TABLE reviewers (
    name VARCHAR PRIMARY KEY,
    role VARCHAR NOT NULL CHECK (role IN ('reviewer', 'adjudicator')),
    password_hash VARCHAR NOT NULL,     -- scrypt$n$r$p$salt$hash (hex); never the password
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE TABLE claims (
    item_id VARCHAR NOT NULL,
    guideline_hash VARCHAR NOT NULL,
    reviewer VARCHAR NOT NULL,          -- who holds the item; nobody else is shown it meanwhile
    claimed_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,      -- an abandoned claim returns to the queue after this
    PRIMARY KEY (item_id, guideline_hash)
);
CREATE TABLE review_settings (
    guideline_hash VARCHAR PRIMARY KEY,
    overlap INTEGER NOT NULL DEFAULT 1, -- independent reviews each escalated item needs
    blind_share DOUBLE NOT NULL DEFAULT 0.2, -- share of escalated items shown without the model's label (audit items always are)
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE OR REPLACE VIEW final_labels AS
WITH latest_review AS (
    SELECT item_id, guideline_hash, label, reviewer, created_at,
           row_number() OVER (PARTITION BY item_id, guideline_hash
                              ORDER BY (action = 'adjudicate') DESC, created_at DESC,
                                       review_id DESC) AS rn
    FROM reviews
    WHERE label IS NOT NULL
)
SELECT
    coalesce(r.item_id, d.item_id) AS item_id,
    coalesce(r.guideline_hash, d.guideline_hash) AS guideline_hash,
    coalesce(r.label, d.label) AS label,
    CASE WHEN r.item_id IS NOT NULL THEN 'human' ELSE 'llm' END AS source,
    r.reviewer AS reviewer,
    d.model AS model,
    d.route AS route,
    d.agreement AS agreement,
    d.confidence AS confidence,
    d.run_id AS run_id,
    coalesce(r.created_at, d.decided_at) AS labeled_at
FROM (SELECT * FROM latest_review WHERE rn = 1) r
FULL OUTER JOIN decisions d
    ON r.item_id = d.item_id AND r.guideline_hash = d.guideline_hash
WHERE r.item_id IS NOT NULL OR d.route = 'auto';
""",
    ),
    Migration(
        3,
        "imported model annotators with confidence; calibrations name their model",
        """
ALTER TABLE reviews ADD COLUMN annotator_kind VARCHAR DEFAULT 'human'; -- human | model: an imported model's labels are never final labels nor human reviews
ALTER TABLE reviews ADD COLUMN confidence DOUBLE;     -- the annotator's stated confidence, 0..1 (imports with --confidence-field)
ALTER TABLE calibrations ADD COLUMN model VARCHAR;     -- whose labels the rule accepts: the decisions' model, or an imported model annotator
CREATE OR REPLACE VIEW final_labels AS
WITH latest_review AS (
    SELECT item_id, guideline_hash, label, reviewer, created_at,
           row_number() OVER (PARTITION BY item_id, guideline_hash
                              ORDER BY (action = 'adjudicate') DESC, created_at DESC,
                                       review_id DESC) AS rn
    FROM reviews
    WHERE label IS NOT NULL AND annotator_kind = 'human'
)
SELECT
    coalesce(r.item_id, d.item_id) AS item_id,
    coalesce(r.guideline_hash, d.guideline_hash) AS guideline_hash,
    coalesce(r.label, d.label) AS label,
    CASE WHEN r.item_id IS NOT NULL THEN 'human' ELSE 'llm' END AS source,
    r.reviewer AS reviewer,
    d.model AS model,
    d.route AS route,
    d.agreement AS agreement,
    d.confidence AS confidence,
    d.run_id AS run_id,
    coalesce(r.created_at, d.decided_at) AS labeled_at
FROM (SELECT * FROM latest_review WHERE rn = 1) r
FULL OUTER JOIN decisions d
    ON r.item_id = d.item_id AND r.guideline_hash = d.guideline_hash
WHERE r.item_id IS NOT NULL OR d.route = 'auto';
""",
    ),
    Migration(
        4,
        "the log's own secrets; items an import made without their fields",
        """
CREATE TABLE log_settings (
    name VARCHAR PRIMARY KEY,           -- audit_key: the HMAC key of the audit and blind draws (made on first use)
    value VARCHAR NOT NULL,             -- for audit_key: 64 hex digits from secrets.token_hex
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
ALTER TABLE items ADD COLUMN placeholder BOOLEAN DEFAULT false; -- made by an import without the guideline's fields; the first input with the item fills them in
""",
    ),
    Migration(
        5,
        "review app sign-in: server-side sessions, failed sign-ins",
        """
CREATE TABLE reviewer_sessions (
    token_sha256 VARCHAR PRIMARY KEY,   -- sha256 (hex) of the token the browser keeps; never the token
    reviewer VARCHAR NOT NULL,
    client VARCHAR,                     -- the IP address that signed in ('local' on this machine)
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,      -- the token is refused after this (12 hours after sign-in)
    revoked_at TIMESTAMP                -- sign-out, `reviewer remove` or `reviewer reset-password`
);
CREATE TABLE sign_in_failures (
    kind VARCHAR NOT NULL CHECK (kind IN ('name', 'client')),
    key VARCHAR NOT NULL,               -- the name as typed, or the client's IP address
    failures INTEGER NOT NULL,          -- attempts in a row that failed; from the 5th on, the next waits
    last_failed_at TIMESTAMP NOT NULL,  -- forgotten a day after this
    PRIMARY KEY (kind, key)
);
""",
    ),
    Migration(
        6,
        "student models: small classifiers trained on the log's trusted labels",
        """
CREATE TABLE students (
    student_id VARCHAR PRIMARY KEY,     -- student:<12 hex digits>, the name in drafts.model, decisions.model and calibrations.model
    guideline_hash VARCHAR NOT NULL,    -- the guideline whose labels it learned
    task VARCHAR NOT NULL,              -- classification or preference
    labels JSON NOT NULL,               -- the labels it can give, in the order of its parameters
    n_train INTEGER NOT NULL,           -- labeled items it was trained on
    include_auto BOOLEAN NOT NULL,      -- auto-accepted LLM labels were among them (student train with include-auto)
    training JSON NOT NULL,             -- [[item_id, label, source], ...]: the data it learned from; calibrate and eval leave these items out for it
    params BLOB NOT NULL,               -- gzip of its learned parameters as JSON (vocabularies, idf weights, coefficients): data only, never pickled code
    params_sha256 VARCHAR NOT NULL,     -- sha256 of the uncompressed parameters
    settings JSON NOT NULL,             -- features and regularisation used, training seconds, accuracy on the trusted labels kept out
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
""",
    ),
    Migration(
        7,
        "items waiting for a retry: no answer from the provider, or a budget cut them short",
        """
CREATE TABLE retries (
    item_id VARCHAR NOT NULL,           -- an item with no decision yet: the next run labels it, reusing its stored drafts; the row goes when its decision is written
    guideline_hash VARCHAR NOT NULL,
    prompt_hash VARCHAR NOT NULL,
    model VARCHAR NOT NULL,             -- the run's main model
    run_id VARCHAR NOT NULL,            -- the last run that left the item undecided
    reason VARCHAR NOT NULL CHECK (reason IN ('provider', 'budget')), -- provider: a model's server did not answer after every retry (connection, timeout, 5xx, 429); budget: --budget could not cover its next request
    error VARCHAR,                      -- the last failure, naming the model and its endpoint
    failed_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (item_id, guideline_hash, prompt_hash, model)
);
""",
    ),
    Migration(
        8,
        "cascades: the stage that decided an item and the stages it went through",
        """
ALTER TABLE decisions ADD COLUMN stage INTEGER; -- the cascade stage (0 = --model) whose verdict this is: the one that accepted the item, else the last one tried; NULL before schema 8
ALTER TABLE decisions ADD COLUMN stages_tried JSON; -- [{"models": [...], "route": auto | next | escalated, "reasons": [...], "label": the stage verdict label, "score": its support or agreement}] per stage tried, in order (label and score: decisions made since they were added); NULL before schema 8
ALTER TABLE decisions_history ADD COLUMN stage INTEGER;
ALTER TABLE decisions_history ADD COLUMN stages_tried JSON;
""",
    ),
    Migration(
        9,
        "cached prompt tokens of each draft",
        """
ALTER TABLE drafts ADD COLUMN cached_prompt_tokens INTEGER DEFAULT 0; -- of prompt_tokens, those the provider read from its prompt cache (usage.prompt_tokens_details.cached_tokens), priced at litellm's cache_read_input_token_cost where its table has one
""",
    ),
    Migration(
        10,
        "few-shot examples: the trusted labels each prompt showed",
        """
ALTER TABLE drafts ADD COLUMN example_ids JSON;  -- the items whose trusted labels the prompt showed as examples, in order; NULL: none (label without --examples)
""",
    ),
    Migration(
        11,
        "provider batches (label --batch): each batch and what each of its lines asks for",
        """
CREATE TABLE batches (
    submission_id VARCHAR PRIMARY KEY,  -- labelagent's id for one submission, written before anything is sent
    run_id VARCHAR NOT NULL,            -- the run that submitted it; a later run polls it to the end
    guideline_hash VARCHAR NOT NULL,
    prompt_hash VARCHAR NOT NULL,
    run_model VARCHAR NOT NULL,         -- the run's main model or cascade key, as decisions.model
    model VARCHAR NOT NULL,             -- the model every line asks (drafts.model)
    round INTEGER NOT NULL,             -- 1: every pending item; later: unsettled items and next stages
    input_file_id VARCHAR NOT NULL,     -- the uploaded JSONL, logged before the batch is created from it
    batch_id VARCHAR,                   -- the provider's batch id, logged before it is polled; NULL: not created yet (a resume first looks for a batch made from input_file_id)
    status VARCHAR NOT NULL,            -- uploaded | submitted (a resume polls it) | consumed (completed; its answers are in drafts) | failed | expired (its answered lines are in drafts) | cancelled
    n_lines INTEGER NOT NULL,
    error VARCHAR,                      -- why the provider failed or expired it
    created_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP               -- when it reached a final status
);
CREATE TABLE batch_lines (
    submission_id VARCHAR NOT NULL,
    custom_id VARCHAR NOT NULL,         -- the line's custom_id in the input file
    item_id VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    seed INTEGER NOT NULL,              -- the request's seed: the item's sampling state when it was asked
    first_sample INTEGER NOT NULL,      -- drafts.sample_index of its first answer
    n INTEGER NOT NULL,                 -- samples asked for (choices)
    PRIMARY KEY (submission_id, custom_id)
);
""",
    ),
]


def apply(
    con: Any, current: int, target: int | None, translate: Callable[[str], str] | None = None
) -> list[int]:
    """Create `schema_migrations` if it is missing, then run on `con` every migration after
    `current` up to `target` (the newest when None), each through `translate` (the backend's
    dialect) and recorded there. Returns the versions applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
    )
    applied = []
    for migration in MIGRATIONS:
        if current < migration.version <= (target or MIGRATIONS[-1].version):
            con.execute(translate(migration.sql) if translate else migration.sql)
            con.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                [migration.version, migration.name],
            )
            applied.append(migration.version)
    return applied
