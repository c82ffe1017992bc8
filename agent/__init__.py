"""labelagent: draft labels with LLMs against written guidelines, escalate doubt to people."""

import os

# litellm downloads a price map at import unless told not to; labelagent makes no network call
# the user did not ask for, so this must be set before anything imports litellm.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"
