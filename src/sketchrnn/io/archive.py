"""Reading zip archives (npz files, Omniglot zips) without trusting them.

Every member is checked against the zip's directory before a byte is inflated: only stored and
deflate members are read (``zipfile`` inflates bzip2 and lzma in one unbounded step), no
encrypted ones, the declared size must be under the caller's cap and the archive's running
total (``SKETCHRNN_MAX_INFLATE_BYTES``), and must be possible for the compressed bytes present
(deflate expands at most ~1032:1, a stored member is its own size, and the compressed data
must lie inside the file). ``zipfile`` then never returns more than the declared size and checks
the CRC once a member is read to its end, so a lying directory is caught either way. Every
error of a damaged archive (``BadZipFile``, ``zlib.error``, ``EOFError``, bad CRC, an unknown
compression method, ...) becomes one :class:`SketchFileError` naming the file and member.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from sketchrnn.io.files import SketchFileError, env_limit, limit_hint, size_text

__all__ = ["Archive", "ZIP_ERRORS"]

# What a damaged zip raises from zipfile and zlib (SketchFileError is re-raised untouched).
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
    OverflowError,
    KeyError,
)
# Deflate's largest expansion: 258 bytes per 2-bit code, ~1032:1; a little slack for headers.
_DEFLATE_MAX_RATIO = 1032
_DEFLATE_SLACK = 1024
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


_mib = size_text


class Archive:
    """A zip opened for reading untrusted members; use as a context manager.

    ``inflated`` counts the bytes members may inflate to, checked against
    ``SKETCHRNN_MAX_INFLATE_BYTES`` as each member is opened.
    """

    def __init__(self, path: str | os.PathLike, what: str = "a readable zip archive"):
        self.path = Path(path)
        self.inflated = 0
        self.limit = env_limit("SKETCHRNN_MAX_INFLATE_BYTES")
        try:
            self.size = self.path.stat().st_size
            self.zf = zipfile.ZipFile(self.path)
        except ZIP_ERRORS as e:
            raise SketchFileError(self.path, f"not {what} ({_why(e)})") from None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.zf.close()

    def infolist(self) -> list[zipfile.ZipInfo]:
        return self.zf.infolist()

    def namelist(self) -> list[str]:
        return self.zf.namelist()

    def getinfo(self, name: str) -> zipfile.ZipInfo:
        return self.zf.getinfo(name)

    def check(
        self,
        info: zipfile.ZipInfo,
        *,
        max_bytes: int,
        limit_name: str | None = None,
        max_ratio: float | None = None,
        kind: str = "data",
    ) -> None:
        """Refuse ``info`` (SketchFileError) unless it may be inflated; see the module text.

        ``max_bytes`` caps this member (``limit_name`` is the variable that lifts it, if any);
        ``max_ratio`` refuses members that inflate more than ``kind`` can compress (a bomb).
        """
        name = info.filename
        if info.flag_bits & 0x1:
            raise SketchFileError(self.path, f"member {name!r} is encrypted")
        if info.compress_type not in _METHODS:
            raise SketchFileError(
                self.path,
                f"member {name!r} uses compression method {info.compress_type} "
                "(only stored and deflate members are read)",
            )
        size, packed = info.file_size, info.compress_size
        if size > max_bytes:
            hint = limit_hint(limit_name) if limit_name else f"over the limit of {_mib(max_bytes)}"
            raise SketchFileError(
                self.path, f"member {name!r} would inflate to {_mib(size)}, {hint}"
            )
        if self.inflated + size > self.limit:
            raise SketchFileError(
                self.path,
                f"members inflate to more than {_mib(self.inflated + size)} in all, "
                + limit_hint("SKETCHRNN_MAX_INFLATE_BYTES"),
            )
        if info.compress_type == zipfile.ZIP_STORED and size != packed:
            raise SketchFileError(
                self.path,
                f"member {name!r} is stored uncompressed but its sizes differ "
                f"({packed} bytes stored, {size} declared): a damaged zip directory",
            )
        if size > packed * _DEFLATE_MAX_RATIO + _DEFLATE_SLACK:
            raise SketchFileError(
                self.path,
                f"member {name!r} declares {size} bytes from {packed} compressed bytes, more "
                "than deflate can expand: a damaged or lying zip directory",
            )
        if max_ratio is not None and size > 65536 and size > packed * max_ratio:
            raise SketchFileError(
                self.path,
                f"member {name!r} inflates {size / max(packed, 1):,.0f}:1, far more than {kind} "
                "compresses: refused as a likely decompression bomb",
            )
        if info.header_offset + packed > self.size:
            raise SketchFileError(
                self.path,
                f"member {name!r} declares {packed} compressed bytes at offset "
                f"{info.header_offset}, past the end of the {self.size}-byte file (truncated?)",
            )

    @contextlib.contextmanager
    def open(self, info: zipfile.ZipInfo, **check: object) -> Iterator[IO[bytes]]:
        """Check ``info`` (see :meth:`check`) and yield its inflating stream; errors of a
        damaged member while it is read inside the block become SketchFileError."""
        self.check(info, **check)  # type: ignore[arg-type]
        self.inflated += info.file_size
        with self.errors(info.filename):
            with self.zf.open(info) as stream:
                yield stream

    def read(self, info: zipfile.ZipInfo, **check: object) -> bytes:
        """The whole checked member (see :meth:`open`)."""
        with self.open(info, **check) as stream:
            data = stream.read()
        if len(data) != info.file_size:
            raise SketchFileError(
                self.path,
                f"member {info.filename!r} holds {len(data)} bytes, its directory says "
                f"{info.file_size}",
            )
        return data

    @contextlib.contextmanager
    def errors(self, member: str) -> Iterator[None]:
        """Turn the errors of a damaged member into one SketchFileError naming it."""
        try:
            yield
        except SketchFileError:
            raise
        except MemoryError:
            raise SketchFileError(
                self.path, f"member {member!r} asks for more memory than there is"
            ) from None
        except ZIP_ERRORS as e:
            raise SketchFileError(
                self.path, f"member {member!r} is damaged or truncated ({_why(e)})"
            ) from None


def _why(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return f"{type(e).__name__}: {text}" if not isinstance(e, zipfile.BadZipFile) else text
