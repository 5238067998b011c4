"""The packed store's manifest: its one declared schema, reading it, and checking it.

:data:`MANIFEST_SCHEMA` declares every field of ``manifest.json`` (its type, its range, which
fields may be absent); :func:`read_manifest` reads the file (bounded in size and nesting) and
checks it against the schema, then checks the fields against each other (the sources tile the
sketches, the split counts add up, the offset statistics give the recorded scale factor, ...).
:func:`check_manifest_digest` checks the digest the writer recorded over the whole manifest,
which catches any edit the checks above let through (the statistics scaled consistently, a
class renamed). Any disagreement is a :class:`~sketchrnn.io.files.SketchFileError` naming the
manifest (so the store), the field (``sources[3].count``) and what is wrong, on one line.

The schema is written with :mod:`~sketchrnn.store.schema`'s small validator; the checks of
fields against each other and against the arrays are code.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from sketchrnn.io.files import SketchFileError, env_limit, limit_hint
from sketchrnn.io.sketchset import SPLITS
from sketchrnn.store.digest import (
    DIGEST_ALGORITHM,
    DIGEST_HEX_CHARS,
    read_error,
    regular_file_size,
    text_digest,
)
from sketchrnn.store.schema import (
    MAX_COUNT,
    Equal,
    Flag,
    Hex,
    Items,
    Mapping,
    Maybe,
    Number,
    Record,
    Row,
    Text,
    Whole,
    Wrong,
    shown,
)
from sketchrnn.strokes import SketchError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "ARRAY_FILES",
    "SPLIT_CODES",
    "MANIFEST_SCHEMA",
    "read_manifest",
    "check_manifest_digest",
    "manifest_digest",
    "offset_std",
]

FORMAT_NAME = "sketchrnn-packed-store"
# 2: digests of the arrays and of the manifest. Version 1 stores (no digests) are refused: a
# store is derived data that one `data pack` rebuilds from its recorded sources, and one that
# cannot show its content is intact is what let damaged stores be trained on.
FORMAT_VERSION = 2
MANIFEST_NAME = "manifest.json"
ARRAY_FILES = {
    "points": "points.npy",
    "offsets": "offsets.npy",
    "labels": "labels.npy",
    "splits": "splits.npy",
}
SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}  # train 0, valid 1, test 2


def offset_std(count: float, total: float, total_sq: float) -> float:
    """The standard deviation of ``count`` values from their sum and sum of squares, as
    :func:`sketchrnn.strokes.scale_factor` would compute it from the values themselves."""
    if count <= 0:
        raise SketchError("cannot compute a scale factor from no sketches")
    mean = total / count
    std = math.sqrt(max(total_sq / count - mean * mean, 0.0))
    if not math.isfinite(std) or std <= 0:
        raise SketchError(f"degenerate scale factor {std} (all offsets equal?)")
    return std


# ----------------------------------------------------------------------------- the schema

_COUNT = Whole(0, MAX_COUNT)
_SOURCE = Record(
    {
        "path": Text(non_empty=True),
        "first": _COUNT,
        "count": _COUNT,
        "points": _COUNT,
        "splits": Record({name: _COUNT for name in SPLITS}),
        "resolved": Text(),
        "bytes": _COUNT,
        "files": _COUNT,
        "mtime_ns": Whole(None, None),
        "read": _COUNT,
        "splits_assigned": _COUNT,
        "scale_factor_in_file": Maybe(Number()),
        "dropped": Mapping(_COUNT),
        "skipped_invalid": Items(Text()),
    },
    optional=(
        "resolved",
        "bytes",
        "files",
        "mtime_ns",
        "read",
        "splits_assigned",
        "scale_factor_in_file",
        "dropped",
        "skipped_invalid",
    ),
    extra=True,  # a StoreWriter's caller may record provenance of its own
)
_OPTIONS = {
    "split_fractions": Row(Number(0, 1), Number(0, 1), Number(0, 1)),
    "split_seed": Whole(None, None),
    "skip_invalid": Flag(),
    "raw_simplification": Text(),
    "offset_limit": Maybe(Number(0, open_low=True)),
    "max_length": Maybe(Whole(1, MAX_COUNT)),
}

MANIFEST_SCHEMA = Record(
    {
        "format": Equal(FORMAT_NAME),
        "format_version": Whole(1, FORMAT_VERSION),
        "created_by": Text(),
        "created_at": Text(),
        "num_sketches": Whole(1, MAX_COUNT),
        "num_points": Whole(1, MAX_COUNT),
        "points_dtype": Text(("int16", "float32")),
        "labels_dtype": Text(("int16", "int32")),
        "files": Equal(ARRAY_FILES),
        "classes": Items(Text(non_empty=True), min_items=1, distinct=True, ascending=True),
        "split_names": Equal(list(SPLITS)),
        "split_counts": Record({name: _COUNT for name in SPLITS}),
        # Options the pack ran with (a StoreWriter's caller may give none).
        "options": Record(_OPTIONS, optional=_OPTIONS),
        "scale_factor": Maybe(Number(0, open_low=True)),
        "train_offset_stats": Record(
            {
                "offset_limit": Maybe(Number(0, open_low=True)),
                # [sketch length, number of dx/dy values, their sum, their sum of squares]
                "by_length": Items(Row(Whole(1, MAX_COUNT), Number(1), Number(), Number(0))),
            }
        ),
        "dropped": Mapping(_COUNT),
        "sources": Items(_SOURCE, min_items=1),
        "digests": Record(
            {
                "algorithm": Equal(DIGEST_ALGORITHM),
                **{name: Hex(DIGEST_HEX_CHARS) for name in ARRAY_FILES},
            }
        ),
        "manifest_digest": Hex(DIGEST_HEX_CHARS),
    }
)
"""Every field of a version :data:`FORMAT_VERSION` manifest, as :class:`StoreWriter
<sketchrnn.store.writer.StoreWriter>` writes it."""


# ----------------------------------------------------------------------------- reading


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the store in folder ``path``, checked against :data:`MANIFEST_SCHEMA`
    and against itself (not yet against the arrays: :func:`~sketchrnn.store.open_store`)."""
    file = path / MANIFEST_NAME
    try:
        folder = os.stat(path)
    except FileNotFoundError:
        raise SketchFileError(path, "no such store (folder missing)") from None
    except OSError as e:
        raise read_error(path, e) from None
    if not stat.S_ISDIR(folder.st_mode):
        raise SketchFileError(path, "not a packed store (a store is a folder)")
    if not os.path.lexists(file):
        raise SketchFileError(
            file, "missing: not a packed store, or an unfinished one (pack it again)"
        )
    if regular_file_size(file) > env_limit("SKETCHRNN_MAX_JSON_BYTES"):
        hint = limit_hint("SKETCHRNN_MAX_JSON_BYTES")
        raise SketchFileError(file, f"too large for a store manifest ({hint})")
    try:
        with open(file, "rb") as f:
            data = f.read(env_limit("SKETCHRNN_MAX_JSON_BYTES") + 1)
        manifest = json.loads(data.decode("utf-8"))
    except OSError as e:
        raise read_error(file, e) from None
    except RecursionError:
        raise SketchFileError(file, "not a readable store manifest (nested too deeply)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SketchFileError(file, f"not a readable store manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise SketchFileError(file, f"not a sketchrnn packed store manifest (no {FORMAT_NAME!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SketchFileError(file, f"format_version: invalid, got {shown(version)}")
    made_by = shown(manifest.get("created_by", "an unknown sketchrnn"))
    if version > FORMAT_VERSION:
        raise SketchFileError(
            file,
            f"written in store format version {version} by a newer sketchrnn ({made_by}); "
            f"this one reads version {FORMAT_VERSION}: upgrade sketchrnn",
        )
    if version < FORMAT_VERSION:
        raise SketchFileError(
            file,
            f"written in store format version {version} ({made_by}), which records no digests "
            "of the store's content: pack it again from its sources "
            f"(sketchrnn data pack SOURCES --out {path} --overwrite)",
        )
    try:
        MANIFEST_SCHEMA.check(manifest, "")
        _check_agreement(manifest)
    except Wrong as wrong:
        raise SketchFileError(file, str(wrong)) from None
    return manifest


def _check_agreement(m: dict[str, Any]) -> None:
    """The fields against each other (the schema has checked each alone)."""
    n, total = m["num_sketches"], m["num_points"]
    if total < n:
        raise Wrong("num_points", f"{total:,} for {n:,} sketches (each has at least one point)")
    wide = len(m["classes"]) > 32767
    if m["labels_dtype"] != ("int32" if wide else "int16"):
        raise Wrong(
            "labels_dtype", f"{m['labels_dtype']} does not fit {len(m['classes']):,} classes"
        )
    counts = m["split_counts"]
    if sum(counts.values()) != n:
        raise Wrong("split_counts", f"add up to {sum(counts.values()):,}, not {n:,} sketches")
    position, points = 0, 0
    per_split = dict.fromkeys(SPLITS, 0)
    dropped: dict[str, int] = {}
    for i, source in enumerate(m["sources"]):
        if source["first"] != position:
            raise Wrong(
                f"sources[{i}].first",
                f"is {source['first']:,}, the sketches before it {position:,}",
            )
        if sum(source["splits"].values()) != source["count"]:
            raise Wrong(f"sources[{i}].splits", f"do not add up to its count {source['count']:,}")
        too_long = source.get("dropped", {}).get("too_long", 0)
        if "read" in source and source["count"] + too_long != source["read"]:
            raise Wrong(
                f"sources[{i}].count",
                f"{source['count']:,} kept + {too_long:,} too long, but {source['read']:,} read",
            )
        position += source["count"]
        points += source["points"]
        for name in SPLITS:
            per_split[name] += source["splits"][name]
        for why, k in source.get("dropped", {}).items():
            dropped[why] = dropped.get(why, 0) + k
    if position != n:
        raise Wrong("sources", f"hold {position:,} sketches, the store {n:,}")
    if points != total:
        raise Wrong("sources", f"hold {points:,} points, the store {total:,}")
    if per_split != counts:
        raise Wrong("split_counts", f"{counts} disagree with the sources' {per_split}")
    if dropped != m["dropped"]:
        raise Wrong("dropped", f"{m['dropped']} disagrees with the sources' {dropped}")
    _check_statistics(m)


def _check_statistics(m: dict[str, Any]) -> None:
    """``train_offset_stats`` against the options, the train count and ``scale_factor``."""
    stats, options = m["train_offset_stats"], m["options"]
    limit = stats["offset_limit"]
    if "offset_limit" in options and options["offset_limit"] != limit:
        raise Wrong(
            "train_offset_stats.offset_limit",
            f"{shown(limit)} differs from options.offset_limit {shown(options['offset_limit'])}",
        )
    rows = stats["by_length"]
    previous, sketches = 0, 0
    for i, (length, count, total, squares) in enumerate(rows):
        field = f"train_offset_stats.by_length[{i}]"
        if length <= previous:
            raise Wrong(field, f"length {length} after {previous} (lengths must ascend)")
        previous = length
        per = count / (2 * length)  # two values (dx, dy) for each point of each sketch
        if per != int(per) or per < 1:
            raise Wrong(field, f"{count:g} values is not 2 x {length} x a number of sketches")
        sketches += int(per)
        # The sum of squares bounds the sum (Cauchy-Schwarz); the clipping bounds both. The
        # slack: sums in float64 of values clipped in float32.
        if total * total > squares * count * (1 + 1e-6) + 1e-6:
            raise Wrong(field, "the sum of squares is too small for the sum")
        if limit is not None and squares > count * limit * limit * (1 + 1e-6):
            raise Wrong(field, f"the sum of squares exceeds {count:g} values clipped at {limit:g}")
    if options.get("max_length") is not None and previous > options["max_length"]:
        raise Wrong(
            "train_offset_stats.by_length",
            f"has sketches of {previous} points, over options.max_length {options['max_length']}",
        )
    if sketches > m["split_counts"]["train"]:
        raise Wrong(
            "train_offset_stats.by_length",
            f"counts {sketches:,} train sketches, the store {m['split_counts']['train']:,}",
        )
    # As the writer computes it (same order of summing), so equal to the last bit.
    totals = [sum(r[i] for r in rows) for i in (1, 2, 3)]
    try:
        scale: float | None = offset_std(*totals)
    except SketchError:
        scale = None
    recorded = m["scale_factor"]
    if (scale is None) != (recorded is None) or (
        scale is not None and not math.isclose(scale, recorded, rel_tol=1e-12)
    ):
        raise Wrong(
            "scale_factor",
            f"{shown(recorded)}, but train_offset_stats give "
            + ("no scale factor" if scale is None else f"{scale:.9g}"),
        )


# ----------------------------------------------------------------------------- its digest


def manifest_digest(manifest: dict[str, Any]) -> str:
    """The digest of everything in ``manifest`` but ``manifest_digest`` itself: XXH3-128 of
    its canonical JSON (keys sorted, no spaces, ASCII, floats as Python's ``repr``)."""
    body = {k: v for k, v in manifest.items() if k != "manifest_digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text_digest(text)


def check_manifest_digest(file: Path, manifest: dict[str, Any]) -> None:
    """Refuse a manifest changed since it was written (whatever the change)."""
    if manifest_digest(manifest) != manifest["manifest_digest"]:
        raise SketchFileError(
            file,
            "changed since the store was packed (its manifest_digest does not match its "
            "content): pack the store again",
        )
