"""Downloading the official Quick, Draw! sketch-rnn training files (``<class>.npz``).

Each class is one file, ``<base url>/<class name, URL-quoted>.npz`` (for example
``the%20eiffel%20tower.npz``), saved under its plain name in a cache folder. Downloads resume:
bytes arrive in ``<name>.npz.part`` and a later call continues it with an HTTP ``Range``
request (starting over when the server ignores the range); the finished file is checked to be
a readable zip (npz) and only then renamed to ``<name>.npz``, so a complete-looking file is
always complete.

:data:`QUICKDRAW_CLASSES` names the 345 classes of the collection;
:func:`download_quickdraw_classes` fetches many of them (``sketchrnn data download --all``):
one overall progress bar, a line per file, and it carries on past a class that fails, naming
the failures at the end. :func:`downloaded_class_files` finds the finished files again (for
``sketchrnn data pack --all``).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "QUICKDRAW_URL",
    "QUICKDRAW_CLASSES",
    "DownloadError",
    "DownloadReport",
    "default_cache_dir",
    "quickdraw_url",
    "read_class_list",
    "download_quickdraw",
    "download_quickdraw_classes",
    "downloaded_class_files",
    "fetch_file",
]

QUICKDRAW_URL = "https://storage.googleapis.com/quickdraw_dataset/sketchrnn/"
_CHUNK_BYTES = 1 << 16

# The 345 classes of Quick, Draw!, spelled as the files are named (three start with "The").
QUICKDRAW_CLASSES: tuple[str, ...] = (
    "aircraft carrier",
    "airplane",
    "alarm clock",
    "ambulance",
    "angel",
    "animal migration",
    "ant",
    "anvil",
    "apple",
    "arm",
    "asparagus",
    "axe",
    "backpack",
    "banana",
    "bandage",
    "barn",
    "baseball",
    "baseball bat",
    "basket",
    "basketball",
    "bat",
    "bathtub",
    "beach",
    "bear",
    "beard",
    "bed",
    "bee",
    "belt",
    "bench",
    "bicycle",
    "binoculars",
    "bird",
    "birthday cake",
    "blackberry",
    "blueberry",
    "book",
    "boomerang",
    "bottlecap",
    "bowtie",
    "bracelet",
    "brain",
    "bread",
    "bridge",
    "broccoli",
    "broom",
    "bucket",
    "bulldozer",
    "bus",
    "bush",
    "butterfly",
    "cactus",
    "cake",
    "calculator",
    "calendar",
    "camel",
    "camera",
    "camouflage",
    "campfire",
    "candle",
    "cannon",
    "canoe",
    "car",
    "carrot",
    "castle",
    "cat",
    "ceiling fan",
    "cell phone",
    "cello",
    "chair",
    "chandelier",
    "church",
    "circle",
    "clarinet",
    "clock",
    "cloud",
    "coffee cup",
    "compass",
    "computer",
    "cookie",
    "cooler",
    "couch",
    "cow",
    "crab",
    "crayon",
    "crocodile",
    "crown",
    "cruise ship",
    "cup",
    "diamond",
    "dishwasher",
    "diving board",
    "dog",
    "dolphin",
    "donut",
    "door",
    "dragon",
    "dresser",
    "drill",
    "drums",
    "duck",
    "dumbbell",
    "ear",
    "elbow",
    "elephant",
    "envelope",
    "eraser",
    "eye",
    "eyeglasses",
    "face",
    "fan",
    "feather",
    "fence",
    "finger",
    "fire hydrant",
    "fireplace",
    "firetruck",
    "fish",
    "flamingo",
    "flashlight",
    "flip flops",
    "floor lamp",
    "flower",
    "flying saucer",
    "foot",
    "fork",
    "frog",
    "frying pan",
    "garden",
    "garden hose",
    "giraffe",
    "goatee",
    "golf club",
    "grapes",
    "grass",
    "guitar",
    "hamburger",
    "hammer",
    "hand",
    "harp",
    "hat",
    "headphones",
    "hedgehog",
    "helicopter",
    "helmet",
    "hexagon",
    "hockey puck",
    "hockey stick",
    "horse",
    "hospital",
    "hot air balloon",
    "hot dog",
    "hot tub",
    "hourglass",
    "house",
    "house plant",
    "hurricane",
    "ice cream",
    "jacket",
    "jail",
    "kangaroo",
    "key",
    "keyboard",
    "knee",
    "knife",
    "ladder",
    "lantern",
    "laptop",
    "leaf",
    "leg",
    "light bulb",
    "lighter",
    "lighthouse",
    "lightning",
    "line",
    "lion",
    "lipstick",
    "lobster",
    "lollipop",
    "mailbox",
    "map",
    "marker",
    "matches",
    "megaphone",
    "mermaid",
    "microphone",
    "microwave",
    "monkey",
    "moon",
    "mosquito",
    "motorbike",
    "mountain",
    "mouse",
    "moustache",
    "mouth",
    "mug",
    "mushroom",
    "nail",
    "necklace",
    "nose",
    "ocean",
    "octagon",
    "octopus",
    "onion",
    "oven",
    "owl",
    "paint can",
    "paintbrush",
    "palm tree",
    "panda",
    "pants",
    "paper clip",
    "parachute",
    "parrot",
    "passport",
    "peanut",
    "pear",
    "peas",
    "pencil",
    "penguin",
    "piano",
    "pickup truck",
    "picture frame",
    "pig",
    "pillow",
    "pineapple",
    "pizza",
    "pliers",
    "police car",
    "pond",
    "pool",
    "popsicle",
    "postcard",
    "potato",
    "power outlet",
    "purse",
    "rabbit",
    "raccoon",
    "radio",
    "rain",
    "rainbow",
    "rake",
    "remote control",
    "rhinoceros",
    "rifle",
    "river",
    "roller coaster",
    "rollerskates",
    "sailboat",
    "sandwich",
    "saw",
    "saxophone",
    "school bus",
    "scissors",
    "scorpion",
    "screwdriver",
    "sea turtle",
    "see saw",
    "shark",
    "sheep",
    "shoe",
    "shorts",
    "shovel",
    "sink",
    "skateboard",
    "skull",
    "skyscraper",
    "sleeping bag",
    "smiley face",
    "snail",
    "snake",
    "snorkel",
    "snowflake",
    "snowman",
    "soccer ball",
    "sock",
    "speedboat",
    "spider",
    "spoon",
    "spreadsheet",
    "square",
    "squiggle",
    "squirrel",
    "stairs",
    "star",
    "steak",
    "stereo",
    "stethoscope",
    "stitches",
    "stop sign",
    "stove",
    "strawberry",
    "streetlight",
    "string bean",
    "submarine",
    "suitcase",
    "sun",
    "swan",
    "sweater",
    "swing set",
    "sword",
    "syringe",
    "t-shirt",
    "table",
    "teapot",
    "teddy-bear",
    "telephone",
    "television",
    "tennis racquet",
    "tent",
    "The Eiffel Tower",
    "The Great Wall of China",
    "The Mona Lisa",
    "tiger",
    "toaster",
    "toe",
    "toilet",
    "tooth",
    "toothbrush",
    "toothpaste",
    "tornado",
    "tractor",
    "traffic light",
    "train",
    "tree",
    "triangle",
    "trombone",
    "truck",
    "trumpet",
    "umbrella",
    "underwear",
    "van",
    "vase",
    "violin",
    "washing machine",
    "watermelon",
    "waterslide",
    "whale",
    "wheel",
    "windmill",
    "wine bottle",
    "wine glass",
    "wristwatch",
    "yoga",
    "zebra",
    "zigzag",
)


class DownloadError(OSError):
    """A download that failed; the message is one line saying what and why."""


class _Unreachable(DownloadError):
    """The server did not answer at all (offline, refused, timed out)."""


# After this many classes in which the server never answered, a many-class download gives up
# on the rest (offline: 345 timeouts would take hours and say nothing new).
UNREACHABLE_GIVE_UP = 3


def default_cache_dir() -> Path:
    """``$SKETCHRNN_CACHE/quickdraw`` if that variable is set, else
    ``~/.cache/sketchrnn/quickdraw``."""
    root = os.environ.get("SKETCHRNN_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "sketchrnn"
    return base / "quickdraw"


def quickdraw_url(class_name: str, base_url: str | None = None) -> str:
    """The URL of one class's npz: ``base_url`` (else ``$SKETCHRNN_QUICKDRAW_URL``, else the
    official storage) joined with the URL-quoted class name."""
    base = base_url or os.environ.get("SKETCHRNN_QUICKDRAW_URL") or QUICKDRAW_URL
    return base.rstrip("/") + "/" + urllib.parse.quote(f"{class_name}.npz")


def _check_class_name(name: str) -> None:
    # The name becomes a file name in the cache: refuse anything that could leave the folder.
    if not name or name != name.strip() or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"not a Quick, Draw! class name: {name!r}")


def read_class_list(path: str | os.PathLike) -> list[str]:
    """The class names of a list file: one a line, blank lines and ``#`` comments ignored,
    duplicates kept once (first place). Raises ``ValueError`` naming the line of a name that
    could not be a file name."""
    names: list[str] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        try:
            _check_class_name(name)
        except ValueError as e:
            raise ValueError(f"{path}:{number}: {e}") from None
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(f"{path}: no class names in the file (one a line)")
    return names


def _is_complete_npz(path: Path) -> bool:
    """True when ``path`` is a zip archive whose members all pass their CRC check."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None and len(archive.namelist()) > 0
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": "sketchrnn"}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _not_found_hint(class_name: str) -> str:
    import difflib

    close = difflib.get_close_matches(class_name, QUICKDRAW_CLASSES, n=3, cutoff=0.6)
    if not close and class_name.lower() != class_name:
        close = difflib.get_close_matches(class_name.lower(), QUICKDRAW_CLASSES, n=3)
    if close:
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?"
    else:
        hint = "the names are those of QUICKDRAW_CLASSES, e.g. 'cat', 'The Eiffel Tower'"
    return f"not found (HTTP 404); the class name {class_name!r} is probably wrong ({hint})"


def _fetch(
    url: str,
    part: Path,
    class_name: str,
    progress: bool,
    timeout: float,
    *,
    desc: str | None = None,
    not_found: str | None = None,
    overall: Any = None,
) -> int:
    """Append the rest of ``url`` to ``part`` (starting it over if the server sends it whole);
    return the number of bytes received.

    ``desc`` labels the file's progress bar (default ``<class_name>.npz``); ``not_found`` is
    what a 404 error says after the URL (default: the Quick, Draw! class name is probably
    wrong). With ``overall`` (a bar counting bytes of many files) the bytes go to that bar and
    the file gets no bar of its own."""
    start = part.stat().st_size if part.exists() else 0
    received = 0
    try:
        try:
            response = _open(url, start, timeout)
        except urllib.error.HTTPError as e:
            if e.code != 416 or start == 0:
                raise
            # Range not satisfiable: the partial file is not a prefix we can continue.
            part.unlink()
            start = 0
            response = _open(url, 0, timeout)
        with response:
            if start > 0 and response.status != 206:
                start = 0  # the server ignored the Range header and sends the whole file
            length = response.headers.get("Content-Length")
            total = start + int(length) if length and length.isdigit() else None
            from sketchrnn.progress import progress_bar

            with (
                open(part, "ab" if start else "wb") as out,
                progress_bar(
                    total=total,
                    initial=start,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=desc or f"{class_name}.npz",
                    disable=not progress or overall is not None,
                    leave=False,
                ) as bar,
            ):
                while chunk := response.read(_CHUNK_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    (overall if overall is not None else bar).update(len(chunk))
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise DownloadError(f"{url}: " + (not_found or _not_found_hint(class_name))) from None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise _Unreachable(f"{url}: cannot reach the server ({reason}); are you offline?") from None
    return received


def _cache_folder(to: str | os.PathLike | None) -> Path:
    return Path(to).expanduser() if to is not None else default_cache_dir()


def _download_class(
    name: str,
    folder: Path,
    base_url: str | None,
    progress: bool,
    timeout: float,
    overall: Any = None,
) -> tuple[Path, str, int]:
    """Fetch one class into ``folder``: ``(path, how, bytes received)``, ``how`` one of
    ``"complete"`` (already there: nothing fetched), ``"downloaded"``, ``"resumed"``."""
    target = folder / f"{name}.npz"
    if target.is_file() and _is_complete_npz(target):
        return target, "complete", 0
    url = quickdraw_url(name, base_url)
    part = target.with_name(target.name + ".part")
    had = part.stat().st_size if part.exists() else 0
    received = _fetch(url, part, name, progress, timeout, overall=overall)
    if not _is_complete_npz(part):
        part.unlink(missing_ok=True)  # a corrupt partial file must not be resumed
        raise DownloadError(f"{url}: the downloaded file is not a valid npz (zip) archive")
    os.replace(part, target)
    # Resumed only if the server continued the partial file (not when it sent it whole).
    resumed = had > 0 and target.stat().st_size == had + received
    return target, "resumed" if resumed else "downloaded", received


def download_quickdraw(
    classes: str | Iterable[str],
    to: str | os.PathLike | None = None,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> list[Path]:
    """Download Quick, Draw! sketch-rnn files for ``classes``; return their local paths.

    ``to`` is the folder (default :func:`default_cache_dir`); ``base_url`` overrides the
    source (else ``$SKETCHRNN_QUICKDRAW_URL``, else the official storage). Files already
    complete are skipped; an interrupted download resumes from its ``.part`` file. Raises
    :class:`DownloadError` with a one-line message when the server cannot be reached, a class
    does not exist (HTTP 404) or the downloaded file is not a valid npz (at the first such
    class; :func:`download_quickdraw_classes` carries on instead).
    """
    names = [classes] if isinstance(classes, str) else list(classes)
    for name in names:
        _check_class_name(name)
    folder = _cache_folder(to)
    folder.mkdir(parents=True, exist_ok=True)
    return [_download_class(name, folder, base_url, progress, timeout)[0] for name in names]


@dataclass
class DownloadReport:
    """What :func:`download_quickdraw_classes` did: the files now complete (in the order
    asked), which classes were already complete, downloaded or resumed, the failures (class ->
    one-line reason) and the bytes received."""

    paths: list[Path] = field(default_factory=list)
    complete: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    bytes_received: int = 0

    def __str__(self) -> str:
        asked = len(self.paths) + len(self.failed)
        return (
            f"{asked} classes: {len(self.downloaded) + len(self.resumed)} downloaded "
            f"({len(self.resumed)} resumed), {len(self.complete)} already complete, "
            f"{len(self.failed)} failed; {_mib(self.bytes_received)} received"
        )


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def download_quickdraw_classes(
    classes: Iterable[str] = QUICKDRAW_CLASSES,
    to: str | os.PathLike | None = None,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    echo: Callable[[str, str], None] | None = None,
) -> DownloadReport:
    """Download many classes (default: all of :data:`QUICKDRAW_CLASSES`) as
    :func:`download_quickdraw` does one, carrying on past a class that fails.

    One progress bar counts the files done and the bytes received; ``echo(line, how)`` is
    called once per file as it finishes, ``how`` one of ``"complete"``, ``"downloaded"``,
    ``"resumed"``, ``"failed"`` and ``line`` saying it: ``<path>: downloaded 54.1 MiB``, ...,
    ``<path>: failed: <reason>``. When the server has not answered at all for the first
    :data:`UNREACHABLE_GIVE_UP` classes (offline), the others are not tried (and count as
    failed). Run it again to fetch what failed: complete
    files are not fetched again, partial ones resume. Raises ``ValueError`` (before fetching
    anything) for a name that could not be a file name.
    """
    names = list(dict.fromkeys(classes))
    for name in names:
        _check_class_name(name)
    folder = _cache_folder(to)
    folder.mkdir(parents=True, exist_ok=True)
    report = DownloadReport()
    from tqdm import tqdm

    from sketchrnn.progress import progress_bar

    def files_done() -> str:
        return f"{len(report.paths) + len(report.failed)}/{len(names)} files"

    with progress_bar(
        total=None,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=files_done(),
        disable=not progress,
    ) as bar:

        def say(line: str, how: str) -> None:
            if echo is not None:
                with tqdm.external_write_mode():  # keep the bar whole around the line
                    echo(line, how)

        answered = False  # has the server answered (a file or an HTTP error) at all?
        for name in names:
            if not answered and len(report.failed) >= UNREACHABLE_GIVE_UP:
                report.failed[name] = "not tried: the server did not answer"
                continue
            try:
                path, how, received = _download_class(
                    name, folder, base_url, progress, timeout, overall=bar
                )
            except DownloadError as e:
                answered = answered or not isinstance(e, _Unreachable)
                report.failed[name] = str(e)
                say(f"{folder / (name + '.npz')}: failed: {e}", "failed")
                if not answered and len(report.failed) == UNREACHABLE_GIVE_UP < len(names):
                    rest = len(names) - UNREACHABLE_GIVE_UP
                    say(f"the server does not answer: the other {rest} classes not tried", "failed")
            else:
                answered = answered or how != "complete"
                report.paths.append(path)
                report.bytes_received += received
                getattr(report, how).append(name)  # how names the list: complete, ...
                size = _mib(path.stat().st_size)
                if how == "complete":
                    say(f"{path}: already complete ({size})", how)
                elif how == "resumed":
                    say(f"{path}: resumed, {size} ({_mib(received)} fetched now)", how)
                else:
                    say(f"{path}: downloaded {size}", how)
            bar.set_description_str(files_done(), refresh=False)
        bar.refresh()
    return report


def downloaded_class_files(
    classes: Iterable[str], to: str | os.PathLike | None = None
) -> tuple[list[Path], list[str]]:
    """``(paths, missing)``: the complete downloaded files of ``classes`` in the folder ``to``
    (default :func:`default_cache_dir`), and the classes that have none yet (or only a
    partial one)."""
    folder = _cache_folder(to)
    paths, missing = [], []
    for name in dict.fromkeys(classes):
        _check_class_name(name)
        path = folder / f"{name}.npz"
        # Only a finished download has this name (bytes arrive in "<name>.npz.part").
        if path.is_file():
            paths.append(path)
        else:
            missing.append(name)
    return paths, missing


def fetch_file(
    url: str,
    target: str | os.PathLike,
    *,
    check: Callable[[Path], str | None] | None = None,
    label: str | None = None,
    not_found: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``target``: resumable through ``<target>.part``, atomic (renamed
    into place only when complete and, with ``check``, when ``check(part)`` returns ``None``
    rather than a reason it is not the expected file), with a progress bar labelled
    ``label``. Raises :class:`DownloadError` (one line, naming the URL) and leaves no
    ``.part`` behind for a file that fails ``check``. ``not_found`` replaces the text of an
    HTTP 404 error after the URL."""
    target = Path(target)
    part = target.with_name(target.name + ".part")
    _fetch(url, part, target.name, progress, timeout, desc=label or target.name,
           not_found=not_found)  # fmt: skip
    reason = check(part) if check is not None else None
    if reason is not None:
        part.unlink(missing_ok=True)  # a corrupt partial file must not be resumed
        raise DownloadError(f"{url}: {reason}")
    os.replace(part, target)
    return target
