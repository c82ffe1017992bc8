"""Benchmark scripts that print figures (see evals/README.md). They are the lab, not the product:
the wheel leaves this folder out."""
