"""The ``rxtweet record`` file format, and reading files for ``rxtweet serve``.

A recording is JSONL (UTF-8, one JSON object per ``\\n``-terminated line):

* a header, first (and again at the start of each later recording appended to the file)::

      {"rxtweet": "record", "version": 1, "endpoint": "/2/tweets/sample/stream", "t": 1716300000.5}

* then one entry per line received, in order::

      {"t": 1716300001.123456, "line": "{\\"data\\":{\\"id\\":\\"1\\",\\"text\\":\\"hi\\"}}"}
      {"t": 1716300021.130112, "line": ""}
      {"t": 1716300022.002301, "b64": "/w=="}

  ``t`` is when the line was received (UNIX epoch seconds, a float). ``line`` is the line
  exactly as received, without its ``\\r\\n``, as text: ``""`` is a keep-alive, and
  malformed lines are kept too (a recording is of the wire, not of the messages). A line
  that is not valid UTF-8 is stored base64-encoded in ``b64`` instead of ``line``.

``rxtweet serve`` reads both recordings and plain JSONL (each line a message, as written by
``rxtweet sample``); :func:`detect_format` tells them apart from the first non-empty line.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

__all__ = ["Entry", "RecordWriter", "detect_format", "read_entries"]

FORMAT_VERSION = 1


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8") + b"\n"


class RecordWriter:
    """Writes a recording to a binary file (the sink of ``rxtweet record``).

    The ``*_line`` static methods give the encoded lines (each ending in ``\\n``) for a
    writer that handles the file itself (the CLI writes whole lines only).
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.flush = out.flush

    @staticmethod
    def header_line(endpoint: str, t: float) -> bytes:
        """The header line: which endpoint, and when the recording started."""
        return _line({"rxtweet": "record", "version": FORMAT_VERSION, "endpoint": endpoint, "t": t})

    @staticmethod
    def entry_line(raw: bytes, t: float) -> bytes:
        """The entry of a line as received (a message or a malformed line)."""
        try:
            return _line({"t": round(t, 6), "line": raw.decode("utf-8")})
        except UnicodeDecodeError:
            return _line({"t": round(t, 6), "b64": base64.b64encode(raw).decode("ascii")})

    @staticmethod
    def keep_alive_line(t: float) -> bytes:
        """The entry of a keep-alive (an empty line)."""
        return _line({"t": round(t, 6), "line": ""})

    def header(self, endpoint: str, t: float) -> None:
        """Write the header line."""
        self._out.write(self.header_line(endpoint, t))

    def message(self, raw: bytes, t: float) -> None:
        """Write a line as received (a message or a malformed line)."""
        self._out.write(self.entry_line(raw, t))

    def keep_alive(self, t: float) -> None:
        """Write a keep-alive (an empty line)."""
        self._out.write(self.keep_alive_line(t))

    malformed = message


@dataclass(frozen=True, slots=True)
class Entry:
    """One line to replay: its bytes and, in recordings, when it was received.

    ``start`` marks the first entry after a header (a new recording session).
    """

    raw: bytes
    t: float | None = None
    start: bool = False


class RecordingError(ValueError):
    """A line of a recording could not be read."""


def _is_header(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("rxtweet") == "record"


def _is_entry(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("t"), int | float)
        and (isinstance(doc.get("line"), str) or isinstance(doc.get("b64"), str))
        and set(doc) <= {"t", "line", "b64"}
    )


def detect_format(path: Path) -> Literal["record", "jsonl"]:
    """``"record"`` when the first non-empty line is a recording header or entry."""
    with path.open("rb") as fh:
        for raw in fh:
            line = raw.strip()
            if not line:
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                return "jsonl"
            return "record" if _is_header(doc) or _is_entry(doc) else "jsonl"
    return "jsonl"


def read_entries(path: Path, kind: Literal["record", "jsonl"]) -> Iterator[Entry]:
    """The entries of a file, lazily (files may be large).

    Plain JSONL yields every non-empty line verbatim (its line ending stripped).

    Raises:
        RecordingError: a recording line is not a header or an entry.
    """
    with path.open("rb") as fh:
        start = True
        for number, raw in enumerate(fh, 1):
            line = raw.rstrip(b"\n")
            if line.endswith(b"\r"):
                line = line[:-1]
            if kind == "jsonl":
                if line.strip():
                    yield Entry(line)
                continue
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError as exc:
                raise RecordingError(f"{path}:{number}: not JSON: {exc}") from None
            if _is_header(doc):
                start = True
                continue
            if not _is_entry(doc):
                raise RecordingError(f"{path}:{number}: not a recording entry")
            if "line" in doc:
                data = doc["line"].encode("utf-8", "surrogatepass")
            else:
                try:
                    data = base64.b64decode(doc["b64"], validate=True)
                except binascii.Error as exc:
                    raise RecordingError(f"{path}:{number}: bad base64: {exc}") from None
            yield Entry(data, float(doc["t"]), start)
            start = False
