"""Where a byte becomes a line.

Two small incremental decoders, fed whatever the socket returned and never blocking:

* :class:`ChunkedDecoder` undoes HTTP/1.1 ``Transfer-Encoding: chunked`` framing;
* :class:`LineSplitter` cuts the payload into lines.

Both work for any split of the input (a chunk header cut in two, a message spread over a
hundred chunks, a UTF-8 character split between reads): they keep what they cannot decode
yet and finish it on the next feed. Lines are returned as ``bytes`` without their ``\\n`` or
``\\r\\n``; an empty line is a keep-alive, returned as ``b""``. Decoding to text is the
parser's job: a line is cut on bytes only, so a multi-byte character cannot be damaged here.
"""

from __future__ import annotations

import logging

__all__ = ["ChunkedDecoder", "ChunkedEncodingError", "LineSplitter"]

log = logging.getLogger("rxtweet.framing")

#: A chunk-size line longer than this is not HTTP (real ones are a few hex digits).
_MAX_SIZE_LINE = 1024


class ChunkedEncodingError(ValueError):
    """The bytes are not valid HTTP/1.1 chunked framing."""


class ChunkedDecoder:
    """Incremental decoder for ``Transfer-Encoding: chunked``.

    >>> d = ChunkedDecoder()
    >>> d.feed(b"5\\r\\nhel") + d.feed(b"lo\\r\\n0\\r\\n\\r\\n")
    b'hello'
    >>> d.done
    True

    ``done`` turns true at the terminating zero-size chunk; anything after it (trailers) is
    ignored. A stream that stops before ``done`` was cut.
    """

    __slots__ = ("_buf", "_left", "_need_crlf", "done")

    def __init__(self) -> None:
        self._buf = b""  # an incomplete chunk-size line, or a split CRLF
        self._left = 0  # payload bytes still to come in the current chunk
        self._need_crlf = False  # the CRLF that closes a chunk's payload
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """Decode ``data`` and return the payload bytes it completes (possibly ``b""``)."""
        if self.done or not data:
            return b""
        if self._buf:
            data = self._buf + data
            self._buf = b""
        out: list[bytes] = []
        pos = 0
        end = len(data)
        while pos < end:
            if self._left:
                take = min(self._left, end - pos)
                out.append(data[pos : pos + take])
                pos += take
                self._left -= take
                if self._left:
                    break
                self._need_crlf = True
            if self._need_crlf:
                if end - pos < 2:
                    self._buf = data[pos:]
                    break
                if data[pos : pos + 2] != b"\r\n":
                    raise ChunkedEncodingError("chunk payload is not followed by CRLF")
                pos += 2
                self._need_crlf = False
                continue
            nl = data.find(b"\r\n", pos)
            if nl < 0:
                if end - pos > _MAX_SIZE_LINE:
                    raise ChunkedEncodingError("chunk-size line too long")
                self._buf = data[pos:]
                break
            size_field = data[pos:nl].split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise ChunkedEncodingError(f"bad chunk size {size_field[:20]!r}") from None
            if size < 0:
                raise ChunkedEncodingError(f"bad chunk size {size_field[:20]!r}")
            pos = nl + 2
            if size == 0:
                self.done = True
                break
            self._left = size
        if not out:
            return b""
        return out[0] if len(out) == 1 else b"".join(out)


class LineSplitter:
    """Incremental splitter of a byte stream into ``\\n``-terminated lines.

    >>> s = LineSplitter()
    >>> s.feed(b'{"a":1}\\r\\n\\r\\n{"b"')
    [b'{"a":1}', b'']
    >>> s.feed(b':2}\\r\\n')
    [b'{"b":2}']

    A line longer than ``max_line`` bytes is dropped whole (logged at WARNING and counted in
    ``dropped``), so a peer that never sends a newline cannot exhaust memory. A partial line
    left when the stream ends is never returned: call :meth:`pending` to see its size.
    """

    __slots__ = ("_overflow", "_parts", "_size", "dropped", "max_line")

    def __init__(self, max_line: int = 64 * 1024 * 1024) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self.dropped = 0
        self._parts: list[bytes] = []  # pieces of the current incomplete line
        self._size = 0
        self._overflow = False  # discarding an over-long line until its newline

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return the lines it completes, without terminators."""
        if data.find(b"\n") < 0:
            if data:
                self._hold(data)
            return []
        lines = data.split(b"\n")
        tail = lines.pop()
        if self._parts or self._overflow:
            first = lines[0]
            if self._overflow or self._size + len(first) > self.max_line:
                self._drop(self._size + len(first))
                del lines[0]
            else:
                self._parts.append(first)
                lines[0] = b"".join(self._parts)
            self._parts = []
            self._size = 0
            self._overflow = False
        if tail:
            self._hold(tail)
        # Messages never contain a raw CR (JSON escapes it): stripping one is safe.
        return [line[:-1] if line[-1:] == b"\r" else line for line in lines]

    def pending(self) -> int:
        """Bytes of an incomplete line held back (they become a line once its ``\\n`` comes)."""
        return self._size

    def _hold(self, piece: bytes) -> None:
        if self._overflow:
            self._size += len(piece)
            return
        self._size += len(piece)
        if self._size > self.max_line:
            self._parts = []
            self._overflow = True
            return
        self._parts.append(piece)

    def _drop(self, size: int) -> None:
        self.dropped += 1
        log.warning(
            "dropped a line of %d bytes: longer than max_line=%d (dropped so far: %d)",
            size,
            self.max_line,
            self.dropped,
        )
