"""Read the dataset to label: JSON Lines, CSV/TSV or Parquet, streamed.

`scan` validates the whole file before any model call is paid; `iter_items` then reads it again,
lazily, in chunks. Both walk the same record readers, so they agree on lines and ids.
"""

import csv
import datetime
import hashlib
import json
import math
import re
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from labelagent.errors import InputError
from labelagent.item_checks import DEFAULT_MAX_ITEM_BYTES, MAX_DEPTH, check_id, check_item
from labelagent.records import Item
from labelagent.safe_text import shown

_JSONL = {".jsonl", ".ndjson", ".json"}
_DELIMITED = {".csv": ",", ".tsv": "\t"}
_PARQUET = {".parquet"}
SUPPORTED = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")
_BOM = "\ufeff"
_CSV_FIELD_LIMIT = 2**31 - 1
_FLOAT_INT_TEXT = re.compile(r"^-?\d+\.0+$")
_MAX_LISTED_FIELDS = 10
_MAX_ID_SHAPES = 100

Record = tuple[int, dict[str, Any]]  # (line or row where the item starts, its fields)


@dataclass(frozen=True)
class IdField:
    """The field that holds item ids, and whether the user named it (`--id-field`): a named field
    must be in the first item; without it, items that lack the default field get ids from their
    content."""

    name: str = "id"
    given: bool = False


DEFAULT_ID_FIELD = IdField()


@dataclass
class ItemKeys:
    """What the log needs to refuse an id stored with other content, for every item in file
    order, compactly: ids, content hashes (as 64-bit numbers) and lines."""

    ids: list[str] = field(default_factory=list)
    hashes: array = field(default_factory=lambda: array("Q"))
    lines: array = field(default_factory=lambda: array("Q"))

    def add(self, item_id: str, fields: dict[str, Any], line: int, id_source: str) -> None:
        self.ids.append(item_id)
        self.hashes.append(int(item_id if id_source == "content" else content_id(fields), 16))
        self.lines.append(line)

    def rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        return [
            {"item_id": item_id, "content_hash": f"{content_hash:016x}", "line": line}
            for item_id, content_hash, line in zip(
                self.ids[start:stop], self.hashes[start:stop], self.lines[start:stop], strict=True
            )
        ]


@dataclass(frozen=True)
class InputSummary:
    path: Path
    dataset: str
    n_items: int
    id_source: str  # "field": ids from the id field; "content": sha256 of the item's fields


def scan(
    path: str | Path,
    required_fields: list[str],
    id_field: IdField = DEFAULT_ID_FIELD,
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
    keys: ItemKeys | None = None,
) -> InputSummary:
    """Validate every item (fields, values, size, ids, duplicates) in one streaming pass; raise
    InputError naming the file and line. Each item's key is added to `keys`, if given."""
    file = _check_path(path)
    unit = _unit(file)
    seen: dict[str, tuple[str, int]] = {}
    name = id_field.name
    id_source = ""
    first_line = 0
    n_items = 0
    for line, fields in _records(file):
        _check_required(file, unit, line, fields, required_fields)
        where = f"{file}, {unit} {line}"
        check_item(where, fields, max_item_bytes)
        if not id_source:
            id_source = _choose_id_source(file, unit, line, fields, id_field)
            first_line = line
        elif id_source == "content" and name in fields:
            raise InputError(
                f"{file}: {unit} {line} has an id field '{name}' but the item on {unit} "
                f"{first_line} does not; either every item has '{name}' or none does."
            )
        item_id = _item_id(file, unit, line, fields, name, id_source)
        if id_source == "field":
            check_id(where, item_id)
        _check_unique(file, unit, line, item_id, seen, id_source, name)
        if keys is not None:
            keys.add(item_id, fields, line, id_source)
        n_items += 1
    if n_items == 0:
        raise InputError(_empty_message(file))
    return InputSummary(path=file, dataset=file.stem, n_items=n_items, id_source=id_source)


def iter_items(
    path: str | Path,
    id_field: str = "id",
    id_source: str = "field",
    chunk_size: int = 1000,
) -> Iterator[list[Item]]:
    """Yield the items in file order, at most `chunk_size` at a time. Call `scan` first."""
    if id_source not in ("field", "content"):
        raise ValueError(f"id_source must be 'field' or 'content', not {id_source!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
    file = _check_path(path)
    unit = _unit(file)
    records = _records(file, batch_size=chunk_size)
    while chunk := list(islice(records, chunk_size)):
        yield [
            Item(
                item_id=_item_id(file, unit, line, fields, id_field, id_source),
                fields=fields,
                line=line,
            )
            for line, fields in chunk
        ]


def read_items(path: str | Path, required_fields: list[str], id_field: str = "id") -> list[Item]:
    """Validate and read the whole file at once; for small files and tests."""
    summary = scan(path, required_fields, IdField(id_field))
    return [
        item for chunk in iter_items(summary.path, id_field, summary.id_source) for item in chunk
    ]


def content_id(fields: dict[str, Any]) -> str:
    """The id of an item without an id field: the first 16 hex digits of its fields' sha256."""
    canonical = json.dumps(
        fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# --- checks -------------------------------------------------------------------------------------


def _check_path(path: str | Path) -> Path:
    file = Path(path)
    if not file.exists():
        raise InputError(f"Input file {file} does not exist.")
    if file.is_dir():
        raise InputError(f"Input path {file} is a directory, not a file.")
    if file.suffix.lower() not in SUPPORTED:
        raise InputError(
            f"Input file {file} has an unsupported extension '{file.suffix}'; "
            f"supported: {', '.join(SUPPORTED)} (.json only as JSON Lines)."
        )
    return file


def _unit(file: Path) -> str:
    return "row" if file.suffix.lower() in _PARQUET else "line"


def _empty_message(file: Path) -> str:
    if file.suffix.lower() in _DELIMITED:
        return f"{file} has no rows to label (a header alone is an empty file)."
    return f"{file} has no items to label."


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


def _check_required(
    file: Path, unit: str, line: int, fields: dict[str, Any], required: list[str]
) -> None:
    """Every required field must be there, and not all of them empty: one empty field among
    several is data (an empty reply is a real answer to compare in a preference)."""
    missing = [name for name in required if name not in fields]
    empty = [name for name in required if name in fields and _is_empty(fields[name])]
    if missing or (required and len(empty) == len(required)):
        name, problem = (missing[0], "is missing") if missing else (empty[0], "is empty")
        raise InputError(
            f"{file}, {unit} {line}: required field '{name}' {problem} "
            f"(the item has fields: {_list_fields(fields)})."
        )


def _list_fields(fields: dict[str, Any]) -> str:
    if not fields:
        return "none"
    names = [shown(str(name)) for name in islice(fields, _MAX_LISTED_FIELDS)]
    more = len(fields) - len(names)
    return ", ".join(names) + (f", ... and {more} more" if more else "")


def _choose_id_source(
    file: Path, unit: str, line: int, fields: dict[str, Any], id_field: IdField
) -> str:
    """The first item decides: with the id field, every item needs one; without, ids come from
    content (unless the user named the field, then its absence is an error)."""
    if id_field.name in fields:
        return "field"
    if id_field.given:
        raise InputError(
            f"{file}, {unit} {line}: the id field '{id_field.name}' is not in the item "
            f"(the item has fields: {_list_fields(fields)})."
        )
    return "content"


def _item_id(
    file: Path, unit: str, line: int, fields: dict[str, Any], id_field: str, id_source: str
) -> str:
    if id_source == "content":
        return content_id(fields)
    if id_field not in fields:
        raise InputError(
            f"{file}, {unit} {line}: the id field '{id_field}' is missing, but other items have "
            f"it (the item has fields: {_list_fields(fields)})."
        )
    value = fields[id_field]
    if _is_empty(value):
        raise InputError(f"{file}, {unit} {line}: the id field '{id_field}' is empty.")
    return _id_text(file, unit, line, value, id_field)


def _id_text(file: Path, unit: str, line: int, value: Any, id_field: str) -> str:
    if isinstance(value, str):
        # A CSV written from a float column (pandas does this when one id is missing) says "3.0".
        if _FLOAT_INT_TEXT.match(value) and file.suffix.lower() in _DELIMITED:
            return value.split(".", 1)[0]
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    raise InputError(
        f"{file}, {unit} {line}: the id field '{id_field}' must be a string or a number, "
        f"not {type(value).__name__}."
    )


def _check_unique(
    file: Path,
    unit: str,
    line: int,
    item_id: str,
    seen: dict[str, tuple[str, int]],
    id_source: str,
    id_field: str,
) -> None:
    """Ids from a field are compared without case: 'A1' and 'a1' are refused as a pair, because
    spreadsheets, case-insensitive file systems and SQL collations would merge them downstream,
    and such a pair is far more often one item typed twice than two items."""
    key = item_id.casefold() if id_source == "field" else item_id
    first_id, first = seen.setdefault(key, (item_id, line))
    if first == line:
        return
    if id_source == "content":
        raise InputError(
            f"{file}: the same content appears on {unit}s {first} and {line} (items without an "
            f"'{id_field}' field get ids from their content; remove the duplicate or add ids)."
        )
    if first_id != item_id:
        raise InputError(
            f"{file}: id '{shown(item_id)}' on {unit} {line} differs only in case from id "
            f"'{shown(first_id)}' on {unit} {first}; ids that differ only in case are refused, "
            "as most tools that read them back would take them for one id."
        )
    raise InputError(
        f"{file}: id '{shown(item_id)}' on {unit} {line} was already used on {unit} {first}."
    )


# --- record readers -----------------------------------------------------------------------------


def _records(file: Path, batch_size: int = 1000) -> Iterator[Record]:
    suffix = file.suffix.lower()
    if suffix in _JSONL:
        return _jsonl_records(file)
    if suffix in _DELIMITED:
        return _delimited_records(file, _DELIMITED[suffix])
    return _parquet_records(file, batch_size)


def _decoded_lines(file: Path) -> Iterator[tuple[int, str]]:
    """Physical lines (split on \\n only, ends kept), decoded; a UTF-8 BOM is dropped."""
    offset = 0
    with _open_binary(file) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{file}, line {number}: invalid UTF-8 at byte offset {exc.start} in the line "
                    f"({offset + exc.start} in the file); save the file as UTF-8."
                ) from None
            if number == 1 and text.startswith(_BOM):
                text = text[1:]
            offset += len(raw)
            yield number, text


def _open_binary(file: Path) -> Any:
    try:
        return file.open("rb")
    except OSError as exc:
        raise InputError(f"Cannot read input file {file}: {exc.strerror}.") from None


def _jsonl_records(file: Path) -> Iterator[Record]:
    for number, text in _decoded_lines(file):
        if not text.strip():
            continue
        yield number, _parse_json_line(file, number, text)


class _RepeatedKey(Exception):
    pass


def _parse_json_line(file: Path, number: int, text: str) -> dict[str, Any]:
    where = f"{file}, line {number}"
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{where}: not valid JSON ({exc.msg} at column {exc.colno}): "
            f"{shown(text.strip())}.{_json_lines_note(file)}"
        ) from None
    except _RepeatedKey as exc:
        raise InputError(f"{where}: the key '{shown(str(exc))}' is given twice.") from None
    except RecursionError:
        raise InputError(f"{where}: nested more than {MAX_DEPTH} levels deep.") from None
    except ValueError as exc:  # a number longer than Python converts (4,300 digits)
        raise InputError(f"{where}: not valid JSON here ({shown(str(exc), 100)}).") from None
    if not isinstance(value, dict):
        kind = _json_kind(value)
        raise InputError(
            f"{where}: expected a JSON object {{...}}, got {kind}.{_json_lines_note(file)}"
        )
    return value


def _json_lines_note(file: Path) -> str:
    if file.suffix.lower() != ".json":
        return ""
    return " A .json input must be JSON Lines: one JSON object per line, no enclosing [ ]."


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when a key is given twice (json keeps the last one silently)."""
    value = dict(pairs)
    if len(value) < len(pairs):
        keys: set[str] = set()
        for key, _ in pairs:
            if key in keys:
                raise _RepeatedKey(key)
            keys.add(key)
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_object)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    return "a number"


def _delimited_records(file: Path, delimiter: str) -> Iterator[Record]:
    """Rows parsed strictly: a quote never closed, or text after a closing quote, is refused with
    the line where the quote opened. `record` holds the physical lines of the row being read."""
    csv.field_size_limit(_CSV_FIELD_LIMIT)  # long texts are normal here; the default is 128 KiB
    record: list[tuple[int, str]] = []

    def lines() -> Iterator[str]:
        for number, text in _decoded_lines(file):
            record.append((number, text))
            yield text

    reader = csv.reader(lines(), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    shapes: set[str] = set()
    for row in _csv_rows(file, reader, record):
        start = record[0][0]
        if row and header is None:
            header = _check_header(file, start, row)
        elif row:
            _add_shape(shapes, row[0])
            _check_swallowed_rows(file, record, len(header), delimiter, shapes)
            yield start, _row_fields(file, start, header, row)
        record.clear()


def _csv_rows(file: Path, reader: Any, record: list[tuple[int, str]]) -> Iterator[list[str]]:
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            start = record[0][0] if record else reader.line_num
            raise InputError(_csv_problem(file, start, reader.line_num, str(exc))) from None
        yield row


def _csv_problem(file: Path, start: int, end: int, error: str) -> str:
    escape = 'a quote inside a quoted field is written twice ("")'
    if error == "unexpected end of data":
        return (
            f"{file}, line {start}: a quote opened on this line is never closed (the field "
            f"runs to the end of the file, line {end}); close it, and note that {escape}."
        )
    if "expected after" in error:
        opened = f" (the field opened on line {start})" if start != end else ""
        return (
            f"{file}, line {end}: text follows the closing quote of a quoted field{opened}; a "
            f"field that starts with a quote must end with one, and {escape}."
        )
    return f"{file}, line {end}: malformed row ({shown(error)})."


def _check_swallowed_rows(
    file: Path, record: list[tuple[int, str]], width: int, delimiter: str, shapes: set[str]
) -> None:
    """A quote left open that a stray quote closes rows later makes one field of many rows.
    Refuse a quoted field in which two lines parse as whole rows whose first value is shaped like
    the first values of the rows so far, this one included (digits, letters, the same
    punctuation); lines of prose rarely are."""
    swallowed = [
        number for number, text in record[1:-1] if _looks_like_row(text, width, delimiter, shapes)
    ]
    if len(swallowed) >= 2:
        raise InputError(
            f"{file}, line {record[0][0]}: the quoted field opened on this line runs to line "
            f"{record[-1][0]}, and lines {swallowed[0]} and {swallowed[1]} look like rows of "
            "their own; a quote is probably not closed on this line (a quote inside a quoted "
            'field is written twice: "").'
        )


def _looks_like_row(text: str, width: int, delimiter: str, shapes: set[str]) -> bool:
    values = next(csv.reader([text], delimiter=delimiter), [])
    shape = _shape(values[0]) if values else None
    return len(values) == width and shape in shapes


def _shape(value: str) -> str | None:
    """'row-17' -> '-9a': which kinds of character a one-word value uses; None for prose."""
    if not value or any(c.isspace() for c in value):
        return None
    return "".join(sorted({"9" if c.isdigit() else "a" if c.isalpha() else c for c in value}))


def _add_shape(shapes: set[str], value: str) -> None:
    shape = _shape(value)
    if shape is not None and len(shapes) < _MAX_ID_SHAPES:
        shapes.add(shape)


def _check_header(file: Path, line: int, header: list[str]) -> list[str]:
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        names = ", ".join(f"'{shown(name)}'" for name in duplicates)
        raise InputError(f"{file}, line {line}: the header repeats column {names}.")
    return header


def _row_fields(file: Path, line: int, header: list[str], row: list[str]) -> dict[str, str]:
    if len(row) != len(header):
        raise InputError(
            f"{file}, line {line}: the row has {len(row)} values but the header has "
            f"{len(header)} columns (an unquoted delimiter or an unclosed quote?)."
        )
    return dict(zip(header, row, strict=True))


def _parquet_records(file: Path, batch_size: int) -> Iterator[Record]:
    import pyarrow as pa  # imported here: pyarrow is heavy and most inputs are not Parquet
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{file} is not a readable Parquet file ({exc}).") from None
    repeated = [name for name, n in Counter(parquet.schema_arrow.names).items() if n > 1]
    if repeated:
        raise InputError(f"{file}: column '{shown(repeated[0])}' appears twice.")
    row = 0
    with parquet:
        for batch in parquet.iter_batches(batch_size=batch_size):
            try:
                rows = batch.to_pylist()
            except UnicodeDecodeError:
                raise _invalid_utf8(file, row + 1, batch) from None
            for values in rows:
                row += 1
                yield row, _parquet_fields(file, row, values)


def _invalid_utf8(file: Path, first_row: int, batch: Any) -> InputError:
    """A string column need not hold valid UTF-8 (a writer can skip the check): find where."""
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        for offset in range(len(column)):
            try:
                column[offset].as_py()
            except UnicodeDecodeError as exc:
                return InputError(
                    f"{file}, row {first_row + offset}: column '{shown(name)}' holds invalid "
                    f"UTF-8 at byte offset {exc.start}."
                )
    return InputError(f"{file}: a string column holds invalid UTF-8.")


def _parquet_fields(file: Path, row: int, values: dict[str, Any]) -> dict[str, Any]:
    fields = {}
    for name, value in values.items():
        try:
            fields[name] = _plain(value)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{file}, row {row}: column '{name}' holds invalid UTF-8 "
                f"at byte offset {exc.start}."
            ) from None
    return fields


def _plain(value: Any) -> Any:
    """Make a Parquet value JSON-safe, so items store and hash the same way from every format."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)
