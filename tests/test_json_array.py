"""Unit tests of json_array.py: records out of a JSON array, whatever the chunking."""

from __future__ import annotations

import json

import pytest

from tap_calven.errors import RetryableError
from tap_calven.json_array import iter_json_array


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# -- the JSON array reader ------------------------------------------------------------

RECORDS = [
    {
        "id": i,
        "name": f"n{i}",
        "text": 'braces } ] , and "quotes" \u00e9\u4e2d',
        "ok": True,
        "x": None,
    }
    for i in range(300)
]


@pytest.mark.parametrize("size", [1, 7, 64, 4096, 1 << 20])
def test_reader_yields_every_object_whatever_the_chunking(size: int) -> None:
    for body in (json.dumps(RECORDS).encode(), json.dumps(RECORDS, indent=2).encode()):
        assert list(iter_json_array(chunked(body, size))) == RECORDS


def test_reader_accepts_empty_arrays_and_white_space() -> None:
    assert list(iter_json_array([b"  [ \n ] \n"])) == []
    assert list(iter_json_array([b"[", b"]"])) == []


def test_reader_splits_multibyte_characters_across_chunks() -> None:
    body = json.dumps([{"name": "Zo\u00eb \u6771\u4eac \U0001f600"}], ensure_ascii=False).encode()
    assert list(iter_json_array(chunked(body, 1))) == [{"name": "Zo\u00eb \u6771\u4eac \U0001f600"}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"message": "oops"}', "not a JSON array"),
        (b"", "empty"),
        (b"null", "not a JSON array"),
        (b'[{"a": 1}, {"a": 2', "ended early"),
        (b'[{"a": 1},', "ended early"),
        (b'[{"a": 1}', "ended early"),
        (b"[1, 2]", "expected an object"),
        (b'[{"a": 1}] [', "data after its JSON array"),
        (b'[{"a": 1} {"a": 2}]', "expected ',' or ']'"),
    ],
)
def test_reader_rejects_bodies_that_are_not_whole_arrays_of_objects(
    body: bytes, message: str
) -> None:
    with pytest.raises(RetryableError, match=message):
        list(iter_json_array(chunked(body, 3)))


def test_reader_yields_records_before_the_body_ends() -> None:
    """Records come out as their bytes arrive: memory does not grow with the response."""
    seen: list[int] = []

    def source():
        yield b'[{"id": 1},'
        seen.append(len(got))
        yield b'{"id": 2}]'

    got: list[dict] = []
    for record in iter_json_array(source()):
        got.append(record)
    assert got == [{"id": 1}, {"id": 2}]
    assert seen == [1]  # the first record was out before the second chunk was read
