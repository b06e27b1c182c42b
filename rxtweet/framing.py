"""Where a byte becomes a line.

Two small incremental decoders, fed whatever the socket returned and never blocking:

* :class:`ChunkedDecoder` undoes HTTP/1.1 ``Transfer-Encoding: chunked`` framing;
* :class:`LineSplitter` cuts the payload into lines.

Both work for any split of the input (a chunk header cut in two, a message spread over a
hundred chunks, a UTF-8 character split between reads): they keep what they cannot decode
yet and finish it on the next feed. Lines are returned as ``bytes`` without their ``\\n`` or
``\\r\\n``; an empty line is a keep-alive, returned as ``b""``. Decoding to text is the
parser's job: a line is cut on bytes only, so a multi-byte character cannot be damaged here.

Both take ``bytes`` or ``bytearray``. The fast paths call the input's own methods in some
places and not in others, so a subclass whose ``find``, ``split`` or ``startswith`` lies is
given no promise (the transport feeds them the socket's plain ``bytes``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from .errors import ChunkedEncodingError

__all__ = ["DEFAULT_MAX_LINE", "ChunkedDecoder", "ChunkedEncodingError", "LineSplitter"]

log = logging.getLogger(__name__)

#: The longest line kept by default (64 MiB): a longer one is dropped, never buffered further.
#: The one definition: the line splitter, the transport options and v1.1's length framing use it.
DEFAULT_MAX_LINE: Final = 64 * 1024 * 1024

#: A chunk-size line longer than this is not HTTP (real ones are a few hex digits).
_MAX_SIZE_LINE = 1024


class ChunkedDecoder:
    """Incremental decoder for ``Transfer-Encoding: chunked``.

    >>> d = ChunkedDecoder()
    >>> d.feed(b"5\\r\\nhel") + d.feed(b"lo\\r\\n0\\r\\n\\r\\n")
    b'hello'
    >>> d.done
    True

    :meth:`feed` returns payload bytes (for a body that must be decompressed before it can
    be split); :meth:`feed_lines` goes straight to lines. X sends one message per chunk, so
    ``feed_lines`` takes a chunk that holds exactly one whole line as that line, with a
    single copy, and hands anything else (a chunk split across reads, several lines in a
    chunk, a line spread over chunks) to a :class:`LineSplitter`. The result is the same.

    ``done`` turns true at the terminating zero-size chunk; anything after it (trailers) is
    ignored. A stream that stops before ``done`` was cut.
    """

    __slots__ = ("_buf", "_left", "_need_crlf", "_short_lines", "done")

    def __init__(self) -> None:
        self._buf = b""  # an incomplete chunk-size line, or a split CRLF
        self._left = 0  # payload bytes still to come in the current chunk
        self._need_crlf = False  # the CRLF that closes a chunk's payload
        self._short_lines = True  # the last read's lines were short: split it whole
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """Decode ``data`` and return the payload bytes it completes (possibly ``b""``)."""
        out: list[bytes] = []
        self._decode(data, out, None)
        if not out:
            return b""
        return out[0] if len(out) == 1 else b"".join(out)

    def feed_lines(self, data: bytes, splitter: LineSplitter) -> list[bytes]:
        """Decode ``data`` and return the lines it completes, split by ``splitter``."""
        out: list[bytes] = []
        size = len(data)
        # Up to the first chunk boundary chunk by chunk (the end of a chunk the last read
        # cut); then, unless a line spread over chunks is pending, the whole chunks at once
        # where lines are short (_whole_chunks) or in a lean walk where they are long
        # (_walk_chunks); the rest chunk by chunk.
        if self._buf or self._left or self._need_crlf or self.done:
            data, pos = self._decode(data, out, splitter, to_boundary=True)
        else:
            # At a boundary (the common case). A read of exactly one chunk that holds one
            # line and its CRLF, as X frames a message, is the read of a stream at a low
            # rate, where a read's cost is the latency: taken here, without the loop's
            # call, when the size is written as X writes it (see _whole_chunks). A CRLF
            # or LF inside means several chunks or lines: the loop decides.
            nl = data.find(b"\r\n")
            line = data[nl + 2 : -4]
            length = len(line)
            if (
                0 < nl <= 8
                and size == nl + length + 6  # the size line, the line, two CRLFs
                and length + 2 <= splitter.max_line
                and data.endswith(b"\r\n\r\n")
                and data[:nl] == (_SIZE_FIELDS[length] if length < 4096 else b"%x" % (length + 2))
                # find, not `in`: bytes.__contains__ first tries its argument as an int,
                # and for bytes raises and clears a formatted TypeError, a cost per read.
                and line.find(b"\n") < 0
                and not splitter._parts
                and not splitter._overflow
            ):
                self._short_lines = size <= WHOLE_CHUNKS_MAX
                return [line]
            pos = 0
        if (
            len(data) - pos >= WHOLE_CHUNKS_MIN_READ
            and not splitter._parts
            and not splitter._overflow
        ):
            if self._short_lines:
                data = self._whole_chunks(data[pos:] if pos else data, out, splitter.max_line)
                pos = 0
            else:
                pos = _walk_chunks(data, pos, out, splitter.max_line)
        if data:
            self._decode(data, out, splitter, start=pos)
        if out:
            self._short_lines = size <= WHOLE_CHUNKS_MAX * len(out)
        return out

    def _whole_chunks(self, data: bytes, out: list[bytes], max_line: int) -> bytes:
        """The common case at a chunk boundary, in C calls rather than a loop: chunks that
        each hold one line and its CRLF (X's framing). Appends their lines to ``out`` and
        returns the bytes after the last of them; or, if any chunk of ``data`` is framed
        otherwise (a size that is not bare hex or does not match, a bare LF, several lines
        or part of one in a chunk, the last chunk, a line over ``max_line``), appends nothing
        and returns ``data`` whole for the chunk-by-chunk path, which decides.

        ``S\r\nL\r\n\r\n`` split on CRLF is ``S``, ``L``, ``b""``: the triples that another
        part follows are complete; the size ``S`` must be ``len(L) + 2``.
        """
        parts = data.split(b"\r\n")
        whole = (len(parts) - 1) // 3
        if not whole:
            return data
        stop = 3 * whole
        sizes = parts[0:stop:3]
        lines = parts[1:stop:3]
        lengths = list(map(len, lines))
        if (
            any(parts[2:stop:3])  # a chunk's payload is not one line and its CRLF
            or b"".join(lines).find(b"\n") >= 0  # a bare LF ends a line too (find: see feed_lines)
            or max(lengths) > max_line
        ):
            return data
        # Each size must be len(L) + 2: compared as bytes with the size fields X writes
        # (lowercase hex, no leading zero), one C call a line; any other spelling is
        # decided by int(), the slower way.
        try:
            canonical = list(map(_SIZE_FIELDS.__getitem__, lengths)) == sizes
        except IndexError:  # a line longer than the table
            canonical = False
        if not canonical and not _sizes_match(sizes, lengths):
            return data
        out.extend(lines)
        # What follows the last whole chunk: the parts after it, with the CRLFs between them.
        return b"\r\n".join(parts[stop:])

    def _decode(
        self,
        data: bytes,
        out: list[bytes],
        splitter: LineSplitter | None,
        *,
        start: int = 0,
        to_boundary: bool = False,
    ) -> tuple[bytes, int]:
        # out receives payload pieces (splitter is None) or lines (splitter given), from
        # data[start:]. With to_boundary, stops where a chunk-size line starts: returns
        # (data, offset) to go on from there (data may be the held bytes + data), or
        # (b"", 0) when it consumed everything or the body ended. Offsets, not a copy of
        # the rest: a read of large messages would be copied once more.
        if self.done or len(data) <= start:
            return b"", 0
        if self._buf:
            data = self._buf + data[start:]
            start = 0
            self._buf = b""
        pos = start
        end = len(data)
        left = self._left
        need_crlf = self._need_crlf
        max_line = splitter.max_line if splitter is not None else 0
        find = data.find
        startswith = data.startswith
        # Whether a chunk that holds one whole line may be taken as that line: only with
        # lines wanted and no line of the splitter's pending (it changes only when the
        # splitter is fed, below).
        whole = splitter is not None and not splitter._parts and not splitter._overflow
        try:
            while pos < end:
                if to_boundary and not left and not need_crlf:
                    return data, pos
                if left:
                    take = left if left < end - pos else end - pos
                    piece = data[pos : pos + take]
                    if splitter is None:
                        out.append(piece)
                    else:
                        out.extend(splitter.feed(piece))
                        whole = not splitter._parts and not splitter._overflow
                    pos += take
                    left -= take
                    if left:
                        break
                    need_crlf = True
                if need_crlf:
                    if end - pos < 2:
                        self._buf = data[pos:]
                        break
                    if not startswith(b"\r\n", pos):
                        raise ChunkedEncodingError("chunk payload is not followed by CRLF")
                    pos += 2
                    need_crlf = False
                    continue
                nl = find(b"\r\n", pos)
                if nl < 0:
                    if end - pos > _MAX_SIZE_LINE:
                        raise ChunkedEncodingError("chunk-size line too long")
                    self._buf = data[pos:]
                    break
                field = data[pos:nl]
                # bare hex digits, the common case, inline (one call less per chunk);
                # _chunk_size refuses what int() alone would take ("0x1f", "+1f", " 1f")
                if field.isalnum() and field[1:2] not in (b"x", b"X"):
                    try:
                        size = int(field, 16)
                    except ValueError:
                        size = _chunk_size(data, pos, nl)
                else:
                    size = _chunk_size(data, pos, nl)
                pos = nl + 2
                if size == 0:
                    self.done = True
                    break
                stop = pos + size
                # The common case: the chunk is one whole line and its closing CRLF (its
                # payload ends in LF, then CRLF, and holds no other LF).
                if (
                    whole
                    and size <= max_line
                    and startswith(b"\n\r\n", stop - 1)
                    and find(b"\n", pos, stop - 1) < 0
                ):
                    # data[pos - 1] is the LF of the size line: a one-byte payload is no CR.
                    out.append(data[pos : stop - 2 if data[stop - 2] == 0x0D else stop - 1])
                    pos = stop + 2
                    continue
                left = size
        finally:
            self._left = left
            self._need_crlf = need_crlf
        return b"", 0


_HEX_DIGITS = b"0123456789abcdefABCDEF"

#: A read goes the whole-chunks way when the lines of the read before it averaged at most
#: this many bytes on the wire. Its split looks at every byte (~4.5 instructions a byte);
#: the chunk-by-chunk walk costs ~6,000 a chunk and then jumps over the payload: below ~1 KB
#: the split is cheaper, above it the walk. (Measured with callgrind on 250 B and 4 KB
#: messages; a stream's messages are much alike, so the last read stands for the next.)
WHOLE_CHUNKS_MAX: Final = 1024


#: ... and when what is left of the read is at least this long: for a read of a message or
#: a few (a stream at a low rate) the chunk-by-chunk walk is quicker, as it runs fewer
#: distinct C functions, whose code is no longer in the CPU's caches after an idle wait.
WHOLE_CHUNKS_MIN_READ: Final = 2048

#: ``_SIZE_FIELDS[n]`` is the chunk-size field of a chunk holding a line of ``n`` bytes and
#: its CRLF, as X writes it (``b"%x" % (n + 2)``); for lines up to 4 KiB (~200 KB of memory).
_SIZE_FIELDS: Final = [b"%x" % (n + 2) for n in range(4096)]


def _walk_chunks(data: bytes, pos: int, out: list[bytes], max_line: int) -> int:
    """The common case at a chunk boundary where lines are long, in a lean loop: chunks that
    each hold one line and its CRLF, their size in bare hex digits without a leading zero (as
    X writes it, or in upper case). Appends their lines to ``out`` and returns where it
    stopped: the end of ``data``, or the first chunk framed otherwise or cut by the read,
    which the chunk-by-chunk path then decides (it gives the same lines for these chunks,
    with about a third more Python steps each).
    """
    find = data.find
    startswith = data.startswith
    end = len(data)
    while pos < end:
        nl = find(b"\r\n", pos, pos + 10)  # the size field: X's has at most 8 digits
        field = data[pos:nl]
        # Bare hex digits without a leading 0 (which also rules out the last chunk, "0",
        # and a "0x" prefix): int() alone would also take " 1f", "+1f" or "1_f".
        if nl < 0 or not field.isalnum() or field[0] == 0x30:
            return pos
        try:
            size = int(field, 16)
        except ValueError:  # a letter that is not a hex digit
            return pos
        stop = nl + size  # where the line's CRLF starts: nl + 2 + (size - 2)
        # (A size of 1 fails the startswith: data[stop] is then the size line's LF.)
        if (
            size > max_line  # as in _decode: the splitter decides a line near the bound
            or not startswith(b"\r\n\r\n", stop)  # also false when the read cut the chunk
            or find(b"\n", nl + 2, stop) >= 0  # a bare LF: more than one line in the chunk
        ):
            return pos
        out.append(data[nl + 2 : stop])
        pos = stop + 4
    return pos


def _sizes_match(sizes: list[bytes], lengths: list[int]) -> bool:
    """Whether each chunk-size field is bare hex for its line's length + 2, spelled any
    way (upper case, leading zeros): the uncommon case of :meth:`ChunkedDecoder._whole_chunks`."""
    digits = b"".join(sizes)
    # int(..., 16) also takes "0x1f", "1_f", "+1f", " 1f": only bare hex here
    if not all(sizes) or not digits.isalnum() or b"x" in digits or b"X" in digits:
        return False
    try:
        return [int(size, 16) for size in sizes] == [length + 2 for length in lengths]
    except ValueError:  # a letter that is not a hex digit
        return False


def _chunk_size(data: bytes, start: int, stop: int) -> int:
    """The size on a chunk-size line ``data[start:stop]`` (hex, maybe with extensions).

    Only hex digits make a size: ``int(..., 16)`` alone would also take ``0x1f``, ``1_f``,
    a sign or surrounding spaces, none of which is HTTP.
    """
    field = data[start:stop]
    if field.isalnum() and field[1:2] not in (b"x", b"X"):
        try:
            return int(field, 16)  # the common case: bare hex digits
        except ValueError:
            pass  # a letter that is not hex: refused below
    bare = field.split(b";", 1)[0].rstrip(b" \t")
    if not bare or bare.translate(None, _HEX_DIGITS):
        raise ChunkedEncodingError(f"bad chunk size {field[:20]!r}")
    return int(bare, 16)


class LineSplitter:
    """Incremental splitter of a byte stream into ``\\n``-terminated lines.

    >>> s = LineSplitter()
    >>> s.feed(b'{"a":1}\\r\\n\\r\\n{"b"')
    [b'{"a":1}', b'']
    >>> s.feed(b':2}\\r\\n')
    [b'{"b":2}']

    A line longer than ``max_line`` bytes is dropped whole (logged at WARNING, counted in
    ``dropped`` and, when given, reported to ``on_drop`` with its size in bytes), so a peer
    that never sends a newline cannot exhaust memory. ``on_drop`` is called from within
    :meth:`feed`; an exception it raises propagates out of that call. A partial line left
    when the stream ends is never returned: call :meth:`pending` to see its size.
    """

    __slots__ = ("_overflow", "_parts", "_size", "dropped", "max_line", "on_drop")

    def __init__(
        self, max_line: int = DEFAULT_MAX_LINE, on_drop: Callable[[int], None] | None = None
    ) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self.on_drop = on_drop
        self.dropped = 0
        self._parts: list[bytes] = []  # pieces of the current incomplete line
        self._size = 0
        self._overflow = False  # discarding an over-long line until its newline

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return the lines it completes, without terminators."""
        lf = data.find(b"\n")
        if lf < 0:
            if data:
                self._hold(data)
            return []
        if lf == len(data) - 1:
            # The end of one line, the common case (a line a read cut, completed by the
            # next): found, where split would look at every byte once more.
            lines = [data[:lf]]
            tail = b""
        else:
            lines = data.split(b"\n")
            tail = lines.pop()
        if self._parts or self._overflow:
            first = lines[0]
            size = self._size + len(first)
            # The CR of a CRLF is no part of the line, whichever read it came in.
            last = first if first or not self._parts else self._parts[-1]
            ends_in_cr = last[-1:] == b"\r"
            if self._overflow or size - ends_in_cr > self.max_line:
                self._drop(size)
                del lines[0]
            else:
                self._parts.append(first)
                lines[0] = b"".join(self._parts)
            self._parts = []
            self._size = 0
            self._overflow = False
        if tail:
            self._hold(tail)
        if len(data) > self.max_line:  # only then can a line within this read be too long
            lines = self._without_long(lines)
        # Messages never contain a raw CR (JSON escapes it): stripping one is safe.
        return [line[:-1] if line[-1:] == b"\r" else line for line in lines]

    def _without_long(self, lines: list[bytes]) -> list[bytes]:
        kept = []
        for line in lines:
            if len(line) - (line[-1:] == b"\r") > self.max_line:  # a CRLF's CR does not count
                self._drop(len(line))
            else:
                kept.append(line)
        return kept

    def pending(self) -> int:
        """Bytes of an incomplete line held back (they become a line once its ``\\n`` comes)."""
        return self._size

    def _hold(self, piece: bytes) -> None:
        if self._overflow:
            self._size += len(piece)
            return
        self._size += len(piece)
        # + 1: the last byte held may be the CR of the line's CRLF (decided at its LF).
        if self._size > self.max_line + 1:
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
        if self.on_drop is not None:
            self.on_drop(size)
