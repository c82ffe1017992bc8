"""The one exception tree. The CLI turns each of these into a message, once."""


class LabelagentError(Exception):
    """Base class: every error labelagent raises on purpose. `hint` says what to do next."""

    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class GuidelineError(LabelagentError):
    hint = "Fix the guideline's front matter; see guidelines/sentiment.md for a working example."


class InputError(LabelagentError):
    hint = "Fix the input file and run the same command again; nothing was written."


class PromptError(LabelagentError):
    hint = "Check the template in prompts/ and the variables it uses."


class ConfigError(LabelagentError):
    hint = "Run the command with --help to see the options."


class DatabaseError(LabelagentError):
    hint = "Check the --db path; if another program holds the file, wait for it or close it."


class ModelError(LabelagentError):
    """A model could not be reached or set up at all (not a per-item failure)."""

    hint = "Check --model, --api-base and the provider's API key environment variable."


class ProviderUnreachable(LabelagentError):
    """The model's server or provider stopped answering (connection refused or reset, timeouts,
    5xx, 429 after every retry). The items it failed get no decision and wait for a retry."""

    hint = (
        "Check that the model server is up and reachable (--api-base, network, the provider's "
        "status page), then run the same command again: finished items are kept, and the items "
        "that got no answer are tried again."
    )


class BudgetExceeded(LabelagentError):
    hint = (
        "Raise --budget to continue (it counts what earlier runs of this guideline and these "
        "models spent); finished items are kept and will not be paid again."
    )


class ParseError(LabelagentError):
    """A model answer that does not fit the task. Per-item: stored with the draft, never raised
    past the pipeline."""
