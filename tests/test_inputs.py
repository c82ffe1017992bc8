import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labelagent.errors import InputError
from labelagent.inputs import IdField, InputSummary, iter_items, read_items, scan


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, columns: dict[str, list[Any]]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def all_items(path: Path, id_field: str = "id", id_source: str = "field") -> list:
    return [item for chunk in iter_items(path, id_field, id_source) for item in chunk]


def scan_error(path: Path, required: list[str] | None = None, **kwargs: Any) -> str:
    with pytest.raises(InputError) as raised:
        scan(path, required or [], **kwargs)
    return str(raised.value)


# --- happy paths ---------------------------------------------------------------------------------


def test_jsonl_keeps_json_types_and_lines(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "prefs.jsonl",
        [
            {"id": "a", "prompt": "Hi?", "response_a": ["x", 1], "response_b": {"k": None}},
            {"id": "b", "prompt": "Yo?", "response_a": "plain", "response_b": 2.5},
        ],
    )

    summary = scan(path, ["prompt", "response_a", "response_b"])
    items = all_items(path)

    assert summary == InputSummary(path=path, dataset="prefs", n_items=2, id_source="field")
    assert [(item.item_id, item.line) for item in items] == [("a", 1), ("b", 2)]
    assert items[0].fields["response_a"] == ["x", 1]
    assert items[0].fields["response_b"] == {"k": None}
    assert items[1].fields["response_b"] == 2.5


@pytest.mark.parametrize("suffix", [".ndjson", ".json"])
def test_other_json_lines_extensions(tmp_path: Path, suffix: str) -> None:
    path = write_jsonl(tmp_path / f"data{suffix}", [{"id": 1, "text": "x"}])

    assert scan(path, ["text"]).n_items == 1


def test_blank_lines_are_skipped_and_lines_still_count(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_text('\n{"id": 1, "text": "a"}\n   \n\n{"id": 2, "text": "b"}\n\n', encoding="utf-8")

    assert scan(path, ["text"]).n_items == 2
    assert [item.line for item in all_items(path)] == [2, 5]


def test_csv_multiline_quoted_field_keeps_physical_lines(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text(
        'id,text,stars\n1,"first line\nsecond line\nthird",5\n2,plain,3\n3,"a, b",1\n',
        encoding="utf-8",
    )

    summary = scan(path, ["text"])
    items = all_items(path)

    assert (summary.n_items, summary.dataset) == (3, "reviews")
    assert [(item.item_id, item.line) for item in items] == [("1", 2), ("2", 5), ("3", 6)]
    assert items[0].fields == {"id": "1", "text": "first line\nsecond line\nthird", "stars": "5"}
    assert items[2].fields["text"] == "a, b"


def test_csv_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "windows.csv"
    path.write_bytes(b'id,text\r\n1,"two\r\nlines"\r\n2,b\r\n')

    items = read_items(path, ["text"])

    assert [(item.item_id, item.line, item.fields["text"]) for item in items] == [
        ("1", 2, "two\r\nlines"),
        ("2", 4, "b"),
    ]


def test_tsv(tmp_path: Path) -> None:
    path = tmp_path / "tweets.tsv"
    path.write_text("id\ttext\n7\thello, world\n8\tbye\n", encoding="utf-8")

    items = read_items(path, ["text"])

    assert [(item.item_id, item.fields["text"], item.line) for item in items] == [
        ("7", "hello, world", 2),
        ("8", "bye", 3),
    ]


def test_parquet_rows_and_float_ids(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "news.parquet",
        {"id": [1.0, 2.0, 3.5], "text": ["a", "b", "c"], "tags": [["x"], [], ["y", "z"]]},
    )

    summary = scan(path, ["text"])
    items = all_items(path)

    assert summary == InputSummary(path=path, dataset="news", n_items=3, id_source="field")
    assert [(item.item_id, item.line) for item in items] == [("1", 1), ("2", 2), ("3.5", 3)]
    assert items[2].fields == {"id": 3.5, "text": "c", "tags": ["y", "z"]}


def test_parquet_values_become_json_safe(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "typed.parquet",
        {"id": ["a"], "raw": [b"bytes"], "when": pa.array([0], pa.timestamp("s"))},
    )

    [item] = read_items(path, [])

    assert item.fields == {"id": "a", "raw": "bytes", "when": "1970-01-01T00:00:00"}


def test_int_and_float_ids_become_strings(tmp_path: Path) -> None:
    jsonl = write_jsonl(tmp_path / "nums.jsonl", [{"id": 3}, {"id": 4.0}, {"id": "05"}])
    csv = tmp_path / "nums.csv"
    csv.write_text("id,text\n3.0,a\n4,b\n2.50,c\n", encoding="utf-8")

    assert [item.item_id for item in read_items(jsonl, [])] == ["3", "4", "05"]
    assert [item.item_id for item in read_items(csv, [])] == ["3", "4", "2.50"]


def test_int_and_float_spelling_of_one_id_is_a_duplicate(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "nums.jsonl", [{"id": 3}, {"id": 3.0}])

    assert "id '3' on line 2 was already used on line 1" in scan_error(path)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    csv = tmp_path / "excel.csv"
    csv.write_bytes("id,text\n1,café\n".encode("utf-8-sig"))
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes('{"id": 1, "text": "x"}\n'.encode("utf-8-sig"))

    assert read_items(csv, ["text"])[0].fields == {"id": "1", "text": "café"}
    assert read_items(jsonl, ["text"])[0].item_id == "1"


def test_content_ids_when_no_item_has_the_id_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "noid.jsonl", [{"text": "é", "n": 1}, {"text": "b", "n": 2}])

    summary = scan(path, ["text"])
    items = all_items(path, id_source=summary.id_source)

    expected = hashlib.sha256('{"n":1,"text":"é"}'.encode()).hexdigest()[:16]
    assert summary.id_source == "content"
    assert items[0].item_id == expected
    assert len({item.item_id for item in items}) == 2


def test_custom_id_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "uid.jsonl", [{"uid": "u1", "text": "a"}])

    summary = scan(path, ["text"], IdField("uid", given=True))

    assert summary.id_source == "field"
    assert read_items(path, ["text"], id_field="uid")[0].item_id == "u1"


def test_chunks_are_bounded_and_in_file_order(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "many.jsonl", [{"id": n, "text": "t"} for n in range(2500)])

    chunks = list(iter_items(path, chunk_size=1000))

    assert [len(chunk) for chunk in chunks] == [1000, 1000, 500]
    assert [item.line for chunk in chunks for item in chunk] == list(range(1, 2501))


def test_parquet_chunks_span_batches(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "big.parquet", {"id": list(range(25)), "text": ["t"] * 25})

    chunks = list(iter_items(path, chunk_size=10))

    assert [len(chunk) for chunk in chunks] == [10, 10, 5]
    assert chunks[2][-1].line == 25


def test_scan_streams_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "large.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for n in range(100_000):
            out.write(json.dumps({"text": f"review {n} " + "x" * 180, "n": n}) + "\n")

    summary = scan(path, ["text"])
    count = sum(len(chunk) for chunk in iter_items(path, id_source=summary.id_source))

    assert (summary.n_items, summary.id_source, count) == (100_000, "content", 100_000)


# --- bad inputs: each names the file and where -------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert "nowhere.jsonl does not exist" in scan_error(tmp_path / "nowhere.jsonl")


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("x", encoding="utf-8")

    message = scan_error(path)

    assert "data.xlsx" in message
    assert "'.xlsx'" in message
    assert ".jsonl, .ndjson, .json, .csv, .tsv, .parquet" in message


def test_empty_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n \n", encoding="utf-8")

    assert "empty.jsonl has no items" in scan_error(path)


def test_csv_with_only_a_header_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("id,text\n", encoding="utf-8")

    assert "header.csv has no rows" in scan_error(path)


def test_empty_parquet(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "none.parquet", {"id": pa.array([], pa.string())})

    assert "none.parquet has no items" in scan_error(path)


def test_malformed_json_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"id": 1}\n\n{"id": 2,\n', encoding="utf-8")

    message = scan_error(path)

    assert "broken.jsonl, line 3: not valid JSON" in message
    assert '{"id": 2,' in message


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.jsonl"
    path.write_text('{"id": 1}\n[1, 2]\n', encoding="utf-8")

    assert "list.jsonl, line 2: expected a JSON object {...}, got an array" in scan_error(path)


def test_json_array_file_is_not_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_text('[\n  {"id": 1}\n]\n', encoding="utf-8")

    message = scan_error(path)

    assert "array.json, line 1" in message
    assert "must be JSON Lines" in message


def test_invalid_utf8_names_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": 2, "text": "caf\xe9"}\n')

    message = scan_error(path)

    assert "latin1.jsonl, line 2: invalid UTF-8 at byte offset 22 in the line (32 in the file)" in (
        message
    )


def test_invalid_utf8_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"id,text\n1,ok\n2,caf\xe9\n")

    assert "latin1.csv, line 3: invalid UTF-8 at byte offset 5 in the line" in scan_error(path)


def test_invalid_utf8_in_parquet_binary_column(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "raw.parquet", {"id": ["a", "b"], "blob": [b"ok", b"caf\xe9"]})

    assert "raw.parquet, row 2: column 'blob' holds invalid UTF-8" in scan_error(path)


def test_invalid_utf8_in_parquet_string_column(tmp_path: Path) -> None:
    text = pa.array([b"ok", b"fine", b"caf\xe9"], pa.binary()).view(pa.string())
    path = write_parquet(tmp_path / "raw.parquet", {"id": ["a", "b", "c"], "text": text})

    assert "raw.parquet, row 3: column 'text' holds invalid UTF-8" in scan_error(path)


def test_required_field_missing(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "fields.jsonl", [{"id": 1, "text": "a"}, {"id": 2, "body": "b"}])

    message = scan_error(path, ["text"])

    assert message.endswith(
        "fields.jsonl, line 2: required field 'text' is missing (the item has fields: id, body)."
    )


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_required_field_empty(tmp_path: Path, empty: str | None) -> None:
    path = write_jsonl(tmp_path / "blank.jsonl", [{"id": 1, "text": empty}])

    assert "blank.jsonl, line 1: required field 'text' is empty" in scan_error(path, ["text"])


def test_one_empty_field_among_several_is_data_not_an_error(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [{"id": 1, "prompt": "Say hi", "response_a": "Hi!", "response_b": ""}],
    )
    assert scan(path, ["prompt", "response_a", "response_b"], IdField("id")).n_items == 1
    blank = write_jsonl(
        tmp_path / "blank.jsonl", [{"id": 1, "prompt": "", "response_a": " ", "response_b": None}]
    )
    message = scan_error(blank, ["prompt", "response_a", "response_b"])
    assert "blank.jsonl, line 1: required field 'prompt' is empty" in message


def test_required_field_error_truncates_the_field_list(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "wide.jsonl", [{f"col{n}": n for n in range(30)}])

    message = scan_error(path, ["text"])

    assert "col0, col1," in message
    assert "... and 20 more" in message
    assert "col29" not in message


def test_required_field_null_in_parquet_names_the_row(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "nulls.parquet", {"id": [1, 2], "text": ["a", None]})

    assert "nulls.parquet, row 2: required field 'text' is empty" in scan_error(path, ["text"])


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "dupes.jsonl", [{"id": "x"}, {"id": "y"}, {"id": "x"}])

    assert "dupes.jsonl: id 'x' on line 3 was already used on line 1" in scan_error(path)


def test_duplicate_id_after_multiline_csv_field(tmp_path: Path) -> None:
    path = tmp_path / "dupes.csv"
    path.write_text('id,text\nx,"one\ntwo"\ny,b\nx,c\n', encoding="utf-8")

    assert "dupes.csv: id 'x' on line 5 was already used on line 2" in scan_error(path)


def test_duplicate_id_in_parquet_names_rows(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "dupes.parquet", {"id": ["a", "b", "a"]})

    assert "dupes.parquet: id 'a' on row 3 was already used on row 1" in scan_error(path)


def test_id_missing_from_one_item(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "some.jsonl", [{"id": 1, "t": "a"}, {"t": "b"}])

    message = scan_error(path)

    assert "some.jsonl, line 2: the id field 'id' is missing, but other items have it" in message


def test_id_empty_in_one_item(tmp_path: Path) -> None:
    path = tmp_path / "gap.csv"
    path.write_text("id,text\n1,a\n,b\n", encoding="utf-8")

    assert "gap.csv, line 3: the id field 'id' is empty" in scan_error(path)


def test_id_field_appearing_after_items_without_it(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "late.jsonl", [{"t": "a"}, {"t": "b"}, {"id": 3, "t": "c"}])

    message = scan_error(path)

    assert "late.jsonl: line 3 has an id field 'id' but the item on line 1 does not" in message


def test_same_content_twice_without_ids(tmp_path: Path) -> None:
    rows = [{"t": "a"}, {"t": "b"}, {"t": "a"}]
    path = write_jsonl(tmp_path / "repeat.jsonl", rows)

    assert "repeat.jsonl: the same content appears on lines 1 and 3" in scan_error(path)


def test_explicit_id_field_must_exist(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "noid.jsonl", [{"text": "a"}])

    message = scan_error(path, id_field=IdField("uid", given=True))

    assert "noid.jsonl, line 1: the id field 'uid' is not in the item" in message
    assert "(the item has fields: text)" in message


def test_id_must_be_a_scalar(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "nested.jsonl", [{"id": [1]}])

    assert "nested.jsonl, line 1: the id field 'id' must be a string or a number" in scan_error(
        path
    )


def test_csv_row_with_wrong_number_of_values(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("id,text\n1,a\n2,b,c\n", encoding="utf-8")

    assert "ragged.csv, line 3: the row has 3 values but the header has 2" in scan_error(path)


def test_csv_header_with_repeated_column(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("id,text,text\n1,a,b\n", encoding="utf-8")

    assert "twice.csv, line 1: the header repeats column 'text'" in scan_error(path)


def test_file_that_is_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text("id,text\n", encoding="utf-8")

    assert "fake.parquet is not a readable Parquet file" in scan_error(path)


# --- hostile inputs: refused with the file and the line, never a traceback or a silent loss ----


def write_csv_rows(path: Path, n: int, stray_row: int | None = None, close_row: int | None = None):
    """`id,text` rows 0..n-1; `stray_row` opens a quote it never closes, `close_row` ends its text
    with a stray quote (which closes the one left open above)."""
    lines = ["id,text"]
    for n_row in range(n):
        text = f"row {n_row} text"
        if n_row == stray_row:
            text = f'"{text}'
        if n_row == close_row:
            text = f'{text} 5 inch"'
        lines.append(f"{n_row},{text}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_unclosed_quote_is_refused_with_the_line_where_it_opened(tmp_path: Path) -> None:
    path = write_csv_rows(tmp_path / "stray.csv", 1000, stray_row=2)

    message = scan_error(path, ["text"])

    assert "stray.csv, line 4: a quote opened on this line is never closed" in message


def test_csv_quote_closed_rows_later_is_refused_as_swallowing_rows(tmp_path: Path) -> None:
    path = write_csv_rows(tmp_path / "stray.csv", 1000, stray_row=2, close_row=500)

    message = scan_error(path, ["text"])

    assert "stray.csv, line 4: the quoted field opened on this line runs to line 502" in message
    assert "lines 5 and 6 look like rows of their own" in message


def test_tsv_unclosed_quote_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stray.tsv"
    path.write_text('id\ttext\n1\tfine\n2\t"open\n3\tswallowed\n', encoding="utf-8")

    assert "stray.tsv, line 3: a quote opened on this line is never closed" in scan_error(path)


def test_csv_text_after_a_closing_quote_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "quotes.csv"
    path.write_text('id,text\n1,fine\n2,"Hi" she said\n', encoding="utf-8")

    message = scan_error(path)

    assert "quotes.csv, line 3: text follows the closing quote of a quoted field" in message


def test_csv_multiline_prose_with_commas_is_still_one_field(tmp_path: Path) -> None:
    path = tmp_path / "letters.csv"
    text = "Dear team,\nThanks, Bob\nRegards, Alice\n2, then 3\nP.S. see you"
    path.write_text(f'id,text\n1,"{text}"\n2,short\n', encoding="utf-8")

    items = read_items(path, ["text"])

    assert [(item.item_id, item.line) for item in items] == [("1", 2), ("2", 7)]
    assert items[0].fields["text"] == text


def big_item_files(tmp_path: Path, size: int) -> list[tuple[Path, str]]:
    text = "x" * size
    jsonl = write_jsonl(tmp_path / "big.jsonl", [{"id": 1, "text": "a"}, {"id": 2, "text": text}])
    csv = tmp_path / "big.csv"
    csv.write_text(f"id,text\n1,a\n2,{text}\n", encoding="utf-8")
    parquet = write_parquet(tmp_path / "big.parquet", {"id": [1, 2], "text": ["a", text]})
    return [(jsonl, "line 2"), (csv, "line 3"), (parquet, "row 2")]


def test_an_item_over_the_size_limit_names_file_line_field_and_how_to_raise_it(
    tmp_path: Path,
) -> None:
    for path, where in big_item_files(tmp_path, 150_000):
        message = scan_error(path, ["text"])

        assert f"{path.name}, {where}: the item is 150," in message, message
        assert "over the limit of 100,000 bytes" in message
        assert "field 'text' (150,000 bytes)" in message
        assert "--max-item-bytes" in message


def test_the_item_size_limit_can_be_raised(tmp_path: Path) -> None:
    for path, _ in big_item_files(tmp_path, 150_000):
        assert scan(path, ["text"], max_item_bytes=200_000).n_items == 2


def test_the_item_size_limit_counts_utf8_bytes(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "wide.jsonl", [{"id": 1, "text": "é" * 600}])

    assert "field 'text' (1,200 bytes)" in scan_error(path, ["text"], max_item_bytes=1000)


def test_deeply_nested_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text(
        '{"id": 1, "text": "a"}\n{"id": 2, "text": ' + "[" * 200_000 + "]" * 200_000 + "}\n",
        encoding="utf-8",
    )
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"id": 1, "text": "a", "x": ' + "[" * 150 + "]" * 150 + "}\n")

    assert "deep.jsonl, line 2: nested more than 100 levels deep" in scan_error(path)
    assert "nested.jsonl, line 1: field 'x' is nested more than 100 levels deep" in scan_error(
        nested
    )


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"id": 1, "text": "bad \\ud800 text"}', "text"),
        ('{"id": "\\udfff", "text": "a"}', "id"),
        ('{"id": 1, "text": "a", "\\ud800": "b"}', "\\ud800"),
        ('{"id": 1, "text": ["ok", {"k": "\\ud83d"}]}', "text"),
    ],
)
def test_lone_surrogate_escapes_in_json_are_refused(tmp_path: Path, line: str, field: str) -> None:
    path = tmp_path / "surrogate.jsonl"
    path.write_text(line + "\n", encoding="utf-8")

    message = scan_error(path)

    assert f"surrogate.jsonl, line 1: field '{field}' holds a lone surrogate" in message
    assert "\ud800" not in message and "\udfff" not in message


def test_a_surrogate_pair_escape_is_one_character_and_fine(tmp_path: Path) -> None:
    path = tmp_path / "emoji.jsonl"
    path.write_text('{"id": 1, "text": "\\ud83d\\ude00"}\n', encoding="utf-8")

    assert read_items(path, ["text"])[0].fields["text"] == "\U0001f600"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_in_json_are_refused(tmp_path: Path, constant: str) -> None:
    path = tmp_path / "nan.jsonl"
    path.write_text(f'{{"id": 1, "text": "a"}}\n{{"id": 2, "text": "b", "score": {constant}}}\n')

    message = scan_error(path, ["text"])

    assert "nan.jsonl, line 2: field 'score' holds" in message
    assert "not a JSON number" in message


def test_nan_and_infinity_in_parquet_are_refused(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "scores.parquet",
        {"id": [1, 2, 3], "text": ["a", "b", "c"], "score": [0.5, 0.7, float("inf")]},
    )

    assert "scores.parquet, row 3: field 'score' holds inf" in scan_error(path, ["text"])


def test_a_number_too_long_for_python_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_text('{"id": 1, "n": ' + "9" * 5000 + "}\n", encoding="utf-8")

    assert "long.jsonl, line 1: not valid JSON" in scan_error(path)


def test_a_key_given_twice_in_a_json_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.jsonl"
    path.write_text('{"id": 1, "text": "a"}\n{"id": 2, "text": "b", "text": "c"}\n')

    assert "twice.jsonl, line 2: the key 'text' is given twice" in scan_error(path)


def test_parquet_with_a_repeated_column_is_refused(tmp_path: Path) -> None:
    table = pa.Table.from_arrays(
        [pa.array([1]), pa.array(["a"]), pa.array(["b"])], ["id", "t", "t"]
    )
    pq.write_table(table, tmp_path / "twice.parquet")

    assert "twice.parquet: column 't' appears twice" in scan_error(tmp_path / "twice.parquet")


@pytest.mark.parametrize("value", ["5", "true", "null", '"text"'])
def test_json_line_that_is_a_scalar_names_its_kind(tmp_path: Path, value: str) -> None:
    path = tmp_path / "scalar.jsonl"
    path.write_text(value + "\n", encoding="utf-8")

    message = scan_error(path)

    assert "scalar.jsonl, line 1: expected a JSON object {...}, got " in message
    assert "a int" not in message and "a bool" not in message


def test_ids_differing_only_by_case_are_refused_naming_both_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "case.jsonl", [{"id": "Ab1"}, {"id": "x"}, {"id": "aB1"}])

    message = scan_error(path)

    assert "case.jsonl: id 'aB1' on line 3 differs only in case from id 'Ab1' on line 1" in message


@pytest.mark.parametrize("value", [" a", "a ", "\ta"])
def test_ids_with_surrounding_whitespace_are_refused(tmp_path: Path, value: str) -> None:
    path = write_jsonl(tmp_path / "space.jsonl", [{"id": "b"}, {"id": value}])

    message = scan_error(path)

    assert "space.jsonl, line 2: the id" in message
    assert "begins or ends with whitespace" in message


def test_csv_ids_with_surrounding_spaces_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "space.csv"
    path.write_text("text,id\nhello, 1\n", encoding="utf-8")

    assert "space.csv, line 2: the id ' 1' begins or ends with whitespace" in scan_error(path)


@pytest.mark.parametrize(
    ("value", "shown"),
    [("\x1b[31mred", "\\x1b[31mred"), ("a\nb", "a\\nb"), ("a\u202eb", "a\\u202eb")],
)
def test_control_characters_in_ids_are_refused_and_shown_escaped(
    tmp_path: Path, value: str, shown: str
) -> None:
    path = write_jsonl(tmp_path / "ctrl.jsonl", [{"id": value, "text": "a"}])

    message = scan_error(path)

    assert f"ctrl.jsonl, line 1: the id '{shown}' contains a control character" in message
    assert value not in message


def test_field_names_and_lines_in_messages_are_shown_escaped(tmp_path: Path) -> None:
    fields = tmp_path / "ansi.jsonl"
    fields.write_text('{"\\u001b[2Jbody": "a"}\n', encoding="utf-8")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": \x1b[2J\n', encoding="utf-8")

    for message in (scan_error(fields, ["text"]), scan_error(broken)):
        assert "\x1b" not in message
        assert "\\x1b[2J" in message
