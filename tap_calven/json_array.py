"""Read a JSON array of objects as its bytes arrive.

Calven answers every warehouse request with one bare JSON array, up to ~100 MB, and
no pagination: parsing a body whole would make memory grow with the window.
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import msgspec

from tap_calven.errors import RetryableError
from tap_calven.types import Record

_SPACE = " \t\r\n"
_NOT_SPACE = re.compile(r"[^ \t\r\n]")


class RecordDecoder(Protocol):
    """How a stream turns the records of a body into its own: decoded in bulk, or one by one."""

    def decode_batch(self, data: bytes) -> list[Record]:
        """The records of one JSON array; msgspec.DecodeError if `data` is not one."""

    def fit(self, record: Record) -> Record:
        """One record the careful reader decoded."""


class PlainRecords:
    """Records exactly as JSON has them."""

    decode_batch = staticmethod(msgspec.json.Decoder(list[dict[str, Any]]).decode)

    @staticmethod
    def fit(record: Record) -> Record:
        """The record itself."""
        return record


PLAIN_RECORDS = PlainRecords()


def iter_json_array(
    chunks: Iterable[bytes], decoder: RecordDecoder = PLAIN_RECORDS
) -> Iterator[Record]:
    """Yield the objects of a JSON array as its bytes arrive, holding about one chunk.

    Calven answers with one bare array per request, up to ~100 MB; parsing it whole
    would make memory grow with the window. The records that a chunk completes are
    decoded together by msgspec, in one call: a cut just after a `}` that decodes as
    `[...]` is a real boundary between records, since a cut inside a string or a nested
    value cannot decode. Whatever msgspec refuses (NaN, lone surrogates, a body that is
    not an array of objects, a `}` inside a string at every cut tried) is read by
    `_iter_json_array_slowly`, which yields exactly what `json` would and names the
    fault. A body that ends early raises RetryableError, as a dropped connection does.
    `decoder` decodes the records in bulk and fits those the careful reader yields.
    """
    source = iter(chunks)
    pending = bytearray()
    state = _BEGIN
    for chunk in source:
        pending += chunk
        if state == _BEGIN:
            body = pending.lstrip(_SPACE_BYTES)
            if not body:
                pending.clear()
                continue
            if body[0] != _OPEN_BRACKET:
                break
            del pending[: len(pending) - len(body) + 1]
            state = _FIRST
        cut = pending.rfind(b"}")
        for _ in range(_CUTS_TRIED):
            if cut < 0:
                break
            head = b"[" if state == _FIRST else b"[{}"  # after a record: `,{...}` follows
            try:
                batch = decoder.decode_batch(head + pending[: cut + 1] + b"]")
            except (msgspec.DecodeError, ValueError):
                cut = pending.rfind(b"}", 0, cut)
                continue
            del pending[: cut + 1]
            yield from batch if state == _FIRST else batch[1:]
            state = _NEXT
            break
        else:
            break  # no cut decoded: read the rest the careful way
    else:
        if state != _BEGIN and pending.strip(_SPACE_BYTES) == b"]":
            return
    rest = itertools.chain((bytes(pending),), source)
    yield from map(decoder.fit, _iter_json_array_slowly(rest, state))


_BEGIN, _FIRST, _NEXT = "begin", "first", "next"  # before `[`; after it; after a record
_CUTS_TRIED = 4  # cuts tried per chunk before falling back to the careful reader
_SPACE_BYTES = _SPACE.encode()
_OPEN_BRACKET = ord("[")


def _iter_json_array_slowly(source: Iterator[bytes], state: str) -> Iterator[Record]:
    """Read a JSON array one object at a time with `json`, from `state` on.

    The careful reader behind `iter_json_array`: it accepts exactly what `json` accepts
    and says what is wrong with a body that is not a whole array of objects.
    """
    decode = json.JSONDecoder().raw_decode
    to_text = codecs.getincrementaldecoder("utf-8")().decode
    buf, pos, ended = "", 0, False

    def refill() -> bool:
        nonlocal buf, pos, ended
        if ended:
            return False
        chunk = next(source, None)
        ended = chunk is None
        try:
            text = to_text(b"", final=True) if chunk is None else to_text(chunk)
        except UnicodeDecodeError:
            raise RetryableError("the response body is not UTF-8 text") from None
        buf, pos = buf[pos:] + text, 0
        return bool(text) or not ended

    def peek() -> str | None:
        """The next character that is not white space, or None at the end of the body."""
        nonlocal pos
        while True:
            if pos < len(buf) and buf[pos] not in _SPACE:
                return buf[pos]
            found = _NOT_SPACE.search(buf, pos)
            if found:
                pos = found.start()
                return buf[pos]
            pos = len(buf)
            if not refill():
                return None

    if state == _BEGIN:
        first = peek()
        if first != "[":
            raise RetryableError(_not_an_array(first, buf[pos : pos + 80]))
        pos += 1
        state = _FIRST
    while True:
        char = peek()
        if state == _NEXT:
            if char == "]":
                pos += 1
                break
            if char != ",":
                raise RetryableError(_broken_body(char, "',' or ']'"))
            pos += 1
            char = peek()
        elif char == "]":
            pos += 1
            break
        if char != "{":
            raise RetryableError(_broken_body(char, "an object"))
        while True:
            try:
                record, pos = decode(buf, pos)
                break
            except json.JSONDecodeError:
                if not refill():
                    raise RetryableError(_broken_body(None, "the rest of an object")) from None
        yield record
        state = _NEXT
    if peek() is not None:
        raise RetryableError("the response body has data after its JSON array")


def _not_an_array(first: str | None, start: str) -> str:
    if first is None:
        return "the response body is empty, not a JSON array"
    return f"the response body is not a JSON array (it starts {start!r})"


def _broken_body(found: str | None, expected: str) -> str:
    if found is None:
        return f"the response body ended early (truncated JSON: expected {expected})"
    return f"the response body is not a valid JSON array (expected {expected}, found {found!r})"
