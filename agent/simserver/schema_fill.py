"""Generic JSON-schema handling: resolve pydantic-style schemas and fill them with valid values.

Pydantic emits `$defs`/`$ref`, `anyOf: [X, {"type": "null"}]` for optionals, `enum`/`const` for
Literal and `minimum`/`maximum` for bounded numbers; `resolve` reduces those to one concrete
schema and `fill` makes a value that validates against it.
"""

import json
import random
from typing import Any

Schema = dict[str, Any]

_MAX_DEPTH = 12
_NULL: Schema = {"type": "null"}
_DEFAULT_STRING = "sample text"


def _lookup(root: Schema, ref: str) -> Schema:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref is supported, got {ref!r}")
    node: Any = root
    for part in ref[1:].split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _enum_values(branch: Schema) -> list[Any] | None:
    if "const" in branch:
        return [branch["const"]]
    if "enum" in branch:
        return list(branch["enum"])
    return None


def _merge_branches(branches: list[Schema], root: Schema) -> Schema:
    """Pick one concrete branch of anyOf/oneOf, preferring non-null; unions of literals merge."""
    concrete = [resolve(branch, root) for branch in branches]
    non_null = [branch for branch in concrete if branch.get("type") != "null"]
    if not non_null:
        return _NULL
    literal_sets = [_enum_values(branch) for branch in non_null]
    if len(non_null) > 1 and all(values is not None for values in literal_sets):
        return {"enum": [value for values in literal_sets for value in values or []]}
    return non_null[0]


def resolve(schema: Schema, root: Schema) -> Schema:
    """Follow `$ref`, `anyOf`/`oneOf` (dropping null) and `allOf` until a concrete schema."""
    for _ in range(_MAX_DEPTH):
        if "$ref" in schema:
            target = _lookup(root, schema["$ref"])
            siblings = {key: value for key, value in schema.items() if key != "$ref"}
            schema = {**target, **siblings} if siblings else target
        elif "anyOf" in schema or "oneOf" in schema:
            schema = _merge_branches(schema.get("anyOf") or schema.get("oneOf") or [], root)
        elif "allOf" in schema:
            merged: Schema = {key: value for key, value in schema.items() if key != "allOf"}
            for part in schema["allOf"]:
                merged = {**merged, **resolve(part, root)}
            schema = merged
        else:
            return schema
    raise ValueError("schema nests $ref/anyOf too deeply")


def schema_type(schema: Schema) -> str | None:
    """The schema's single type; for a list of types the first non-null one."""
    kind = schema.get("type")
    if isinstance(kind, list):
        return next((item for item in kind if item != "null"), "null")
    if kind is None and "properties" in schema:
        return "object"
    return kind


def enum_options(schema: Schema) -> list[Any] | None:
    """The allowed values of an enum/const schema, else None."""
    return _enum_values(schema)


def number_bounds(schema: Schema, low: float, high: float) -> tuple[float, float]:
    """Inclusive bounds from minimum/maximum (exclusive bounds nudged inwards)."""
    is_int = schema_type(schema) == "integer"
    step = 1 if is_int else 1e-6
    if "minimum" in schema:
        low = schema["minimum"]
    if "exclusiveMinimum" in schema:
        low = schema["exclusiveMinimum"] + step
    if "maximum" in schema:
        high = schema["maximum"]
    if "exclusiveMaximum" in schema:
        high = schema["exclusiveMaximum"] - step
    if low > high:
        high = low
    return low, high


def _fill_string(schema: Schema) -> str:
    formats = {"date-time": "2024-01-01T00:00:00Z", "date": "2024-01-01", "email": "a@b.co"}
    text = formats.get(schema.get("format", ""), _DEFAULT_STRING)
    min_length = schema.get("minLength", 0)
    if len(text) < min_length:
        text = text + "x" * (min_length - len(text))
    return text[: schema.get("maxLength", len(text))]


def _fill_number(schema: Schema, rng: random.Random) -> int | float:
    if schema_type(schema) == "integer":
        low, high = number_bounds(schema, 0, 10)
        return rng.randint(int(low), int(high))
    low, high = number_bounds(schema, 0.0, 1.0)
    return round(rng.uniform(low, high), 4)


def _fill_array(schema: Schema, root: Schema, rng: random.Random, depth: int) -> list[Any]:
    items = schema.get("items", {})
    count = max(schema.get("minItems", 1), 1)
    count = min(count, schema.get("maxItems", count))
    options = enum_options(resolve(items, root)) if isinstance(items, dict) else None
    if options is not None and schema.get("uniqueItems"):
        return rng.sample(options, min(count, len(options)))
    return [fill(items, root, rng, depth + 1) for _ in range(count)]


def fill_object(schema: Schema, root: Schema, rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """Fill every required property of an object schema."""
    properties = schema.get("properties", {})
    return {
        name: fill(properties.get(name, {}), root, rng, depth + 1)
        for name in schema.get("required", [])
    }


def fill(schema: Schema, root: Schema, rng: random.Random, depth: int = 0) -> Any:
    """A random value that validates against `schema` (with `root` for `$ref` lookups)."""
    schema = resolve(schema, root)
    options = enum_options(schema)
    if options is not None:
        return rng.choice(options)
    kind = schema_type(schema)
    if depth > _MAX_DEPTH or kind == "null":
        return None
    if kind == "string":
        return _fill_string(schema)
    if kind in ("integer", "number"):
        return _fill_number(schema, rng)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        return _fill_array(schema, root, rng, depth)
    if kind == "object":
        return fill_object(schema, root, rng, depth)
    return _DEFAULT_STRING


def find_embedded_schema(text: str) -> Schema | None:
    """The largest `{...}` in `text` that parses as JSON and has "properties".

    Instructor's JSON mode pastes the model's JSON schema into the system message.
    """
    decoder = json.JSONDecoder()
    best: Schema | None = None
    best_size = 0
    start = text.find("{")
    while start != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict) and "properties" in value:
            if end - start > best_size:
                best, best_size = value, end - start
            start = text.find("{", end)
        else:
            start = text.find("{", start + 1)
    return best
