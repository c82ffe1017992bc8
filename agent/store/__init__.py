"""The log, and the only code that talks to it: every SQL statement labelagent runs is here
(tests/test_layers.py fails on one anywhere else). Each function takes a connection (the caller
opens one transaction with `db.transaction(path)` and may call several) or, for a whole
operation, the database path; rows come back as frozen dataclasses with named fields.

Who owns what (tables as in docs/schema.md):
- db.py: opening the file (locks, read-only, damage checks), `schema_migrations`, `migrate`.
- postgres.py, address.py: the PostgreSQL pool and its URLs; catalog.py: whether a database
  holds a log, judged the same way on both backends; batches.py: `batches` and `batch_lines`.
- migrations.py, schema_doc.py: the numbered schema and its generated document.
- log.py: the labeling run's writes and resume reads: `guidelines`, `items`, `runs`, `drafts`,
  `decisions` and `decisions_history` (`replace_decisions`), `retries`; writer.py batches them
  and journal.py keeps what could not be written yet.
- keys.py: the audit key in `log_settings`; costs.py: the other `log_settings` and the cost
  figures (drafts, reviews, `final_labels` per guideline).
- status.py: `labelagent status`'s counts; exports.py: `labelagent export` (COPY of
  `final_labels`); imports.py: `labelagent import-labels` (items and `reviews` of source import).
- rules.py: `calibrations`, and the decisions a rule routes again; cascades.py: the drafts
  behind a cascade's decisions.
- annotations.py: every label for a guideline (decisions, reviews, `final_labels`) for eval and
  calibrate; students.py: `students` and their training labels; teaching.py: decisions by
  example setting.
- review/: the review app: `claims`, `reviews`, `review_settings` (queue.py), adjudication
  (cases.py), undo (undo.py), `reviewers`, `reviewer_sessions`, `sign_in_failures`
  (accounts.py), the dashboard (stats.py).
- readback.py, synthetic.py: for evals/benchmarks/ only: whole-log reads and counts, and large
  logs built in SQL.

A second backend (PostgreSQL) goes behind these same functions. The statements of the commands
that run there (status, migrate, copy, schema, settings, reviewer, export, import-labels, eval,
calibrate, plan) take `$n` placeholders and SQL both accept; `db.changed_rows` reads a write's
row count on either; where the two must differ (a temporary table from Python rows: pyarrow or
`log._register` on DuckDB, COPY on PostgreSQL; export's COPY to a file, run by an in-memory
DuckDB for PostgreSQL) the function branches on the connection. The rest (label, review) still
use `?` and DuckDB-only SQL: JSON casts to lists (`CAST(x AS VARCHAR[])`, `unnest`,
`json_extract`, `list_contains`, `list`), `GROUP BY ALL`, `median`, `strftime`, `starts_with`,
`INSERT OR REPLACE`, an INSERT's row count read as its result row, and range()/printf()/list
literals (synthetic.py).
"""
