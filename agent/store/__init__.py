"""The DuckDB log: connections and migrations (db), and what the pipeline reads and writes (log)."""
