"""Every statement the review queue runs: claims, reviews, settings, progress counts and filter
options (queue.py), adjudication cases (cases.py), undo's take-back (undo.py), accounts,
sessions and sign-in failures (accounts.py), the dashboard's figures (stats.py). Each function
takes the connection of the caller's transaction and returns typed rows, so the review core
decides what happens in one transaction and never writes SQL."""
