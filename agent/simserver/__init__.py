"""A simulated annotator: an OpenAI-compatible chat server on loopback that answers labelagent's
prompts from a gold table, with configurable accuracy, latency and faults.

Tests and benchmarks point the real client stack (openai, litellm, instructor) at it.
"""

from labelagent.simserver.config import FAULT_KINDS, SimConfig, load_gold
from labelagent.simserver.server import SimServer, main, serve_forever

__all__ = ["FAULT_KINDS", "SimConfig", "SimServer", "load_gold", "main", "serve_forever"]
