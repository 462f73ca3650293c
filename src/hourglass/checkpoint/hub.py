"""Published weights by name or URL: fetched, verified, converted once, cached, and offline after that.

Wherever a checkpoint is taken (``hourglass.load_model``, ``Predictor.from_checkpoint``, ``--checkpoint``,
``bench MODEL``, ``convert SRC``), it may be a local file (as before), a name from the table of published
weights (``weights.yaml`` beside this module, package data: ``hourglass weights list``), or an
``http(s)://`` / ``file://`` URL, optionally ending in ``#sha256=<64 hex>``.

The cache (:func:`cache_dir`: ``$HOURGLASS_HOME``, else ``$XDG_CACHE_HOME/hourglass``, else
``~/.cache/hourglass``) holds::

    downloads/<key>/<file>              the file as fetched (<key>: the table name, or url-<16 hex> of the URL)
    downloads/<key>/extracted/<member>  the weights file taken out of a .zip
    checkpoints/<key>.safetensors       the converted checkpoint, reused with no request

A transfer writes ``<file>.part`` and renames it only once complete and verified, so nothing partial is
ever taken for complete; a cut transfer resumes from the ``.part`` with an HTTP ``Range`` request (from
the start when the server ignores it). The client is the standard library's ``urllib``: plain GETs, a
``Range`` header and redirects need nothing more, and it adds no dependency to the core install.

Checks: the table's hash (a full sha256, a torch.hub sha256 prefix, an MD5) or, for a URL, a
``#sha256=`` fragment, else a torch.hub hash prefix in the file name (``name-<hex>.ext``: the file's
sha256 must start with it, as ``torch.hub.load_state_dict_from_url(check_hash=True)`` checks). A cached
file that fails its check is fetched again, once. Nothing fetched is loaded here: pickles are read later
with ``torch.load(weights_only=True)`` by the converters, Torch7 files with ``torchfile``.

The same table reader (:func:`read_table`, rows sharing :class:`Published`'s fields) and the same fetch
(:func:`table_source`, :func:`fetch_source`) serve the published data sets of :mod:`.datasets`
(``datasets.yaml``, ``hourglass data get``).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import http.client
import importlib.resources
import os
import re
import shutil
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TypeVar

import yaml

from hourglass.checkpoint.convert import convert_checkpoint
from hourglass.checkpoint.io import read_metadata
from hourglass.errors import CheckpointError, ConfigError, FetchError
from hourglass.files import atomic_write, cache_dir

HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
"""torch.hub's hash prefix in a file name (``torch.hub.HASH_REGEX``): ``bearpaw_hg2-15e342d9.pth`` -> ``15e342d9``."""

WEIGHT_SUFFIXES = (".pth", ".pt", ".tar", ".t7", ".safetensors", ".onnx")
"""What counts as a weights file inside a ``.zip`` when no member is named."""

KINDS = ("pose", "detector")
_CHUNK = 1 << 20
_HASHES = {"sha256": 64, "sha256_prefix": None, "md5": 32}


# --- settings ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferSettings:
    """How transfers behave; :meth:`from_env` reads them from the environment.

    Attributes:
        timeout: seconds allowed for connecting and for each read (``HOURGLASS_TIMEOUT``, default 30).
        retries: further tries after a failure that may pass (a timeout, a reset, an HTTP 5xx or 429, a
            transfer cut short) (``HOURGLASS_RETRIES``, default 3); each resumes where the last stopped.
        backoff: seconds before the first retry, doubled for each further one (at most 30).
        max_bytes: the cap on a download whose size the table does not give (``HOURGLASS_MAX_BYTES``,
            default 2 GB).
        offline: make no request at all (``HOURGLASS_OFFLINE=1``).
        progress: show progress on stderr: a bar on a terminal, plain lines otherwise.
    """

    timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0
    max_bytes: int = 2_000_000_000
    offline: bool = False
    progress: bool = True

    @classmethod
    def from_env(cls) -> TransferSettings:
        env = os.environ
        try:
            return cls(
                timeout=float(env.get("HOURGLASS_TIMEOUT", cls.timeout)),
                retries=int(env.get("HOURGLASS_RETRIES", cls.retries)),
                max_bytes=int(env.get("HOURGLASS_MAX_BYTES", cls.max_bytes)),
                offline=env.get("HOURGLASS_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"),
            )
        except ValueError as err:
            raise ConfigError(
                f"HOURGLASS_TIMEOUT / HOURGLASS_RETRIES / HOURGLASS_MAX_BYTES: not a number ({err})"
            ) from None


# --- the table --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """What every row of a table of published files says about its file (``weights.yaml``, ``datasets.yaml``):
    where it is, the name it is kept under in the cache, and how it is checked."""

    name: str
    url: str | None
    mirrors: tuple[str, ...]
    file: str
    hash: tuple[str, str] | None
    hash_note: str
    size: int | None
    max_size: int | None
    page: str | None
    row: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Weights(Published):
    """One row of the table of published weights (``weights.yaml``; its header comment names every field)."""

    kind: str
    family: str
    member: str | None
    preset: str | None


def published_fields(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """The :class:`Published` fields of table ``entry`` (``where`` names it in errors), checked: URLs, hash.

    Raises:
        ConfigError: a URL that is not http(s):// or file://, a row with neither url nor file, a malformed hash.
    """
    url, mirrors = entry.get("url"), tuple(entry.get("mirrors") or ())
    for u in (url, *mirrors) if url else mirrors:
        if not _is_url(u):
            raise ConfigError(f"{where}: {u!r} is not an http(s):// or file:// URL")
    if url is None and not entry.get("file"):
        raise ConfigError(f"{where}: a row without a url needs a 'file' name")
    check = None
    if entry.get("hash", "none") != "none":
        spec = entry["hash"]
        if not (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in _HASHES):
            raise ConfigError(f"{where}: hash must be none or one of {{{', '.join(_HASHES)}: hex}}, got {spec!r}")
        algo, value = next(iter(spec.items()))
        value = str(value).lower()
        if not re.fullmatch(r"[0-9a-f]+", value) or (_HASHES[algo] and len(value) != _HASHES[algo]):
            raise ConfigError(f"{where}: {algo} {value!r} is not {_HASHES[algo] or 'some'} hex digits")
        check = (algo, value)
    return {
        "name": entry["name"],
        "url": url,
        "mirrors": mirrors,
        "file": entry.get("file") or _url_file(url),
        "hash": check,
        "hash_note": str(entry.get("hash_note", "")),
        "size": entry.get("size"),
        "max_size": entry.get("max_size"),
        "page": entry.get("page"),
        "row": entry,
    }


def _row(entry: dict[str, Any], where: str) -> Weights:
    """A typed :class:`Weights` of a ``weights.yaml`` entry; a malformed one is a :class:`ConfigError` naming it."""
    if entry.get("kind") not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, got {entry.get('kind')!r}")
    return Weights(
        **published_fields(entry, where),
        kind=entry["kind"],
        family=str(entry.get("family", "auto")),
        member=entry.get("member"),
        preset=entry.get("preset"),
    )


R = TypeVar("R", bound=Published)


def read_table(file: str, make_row: Callable[[dict[str, Any], str], R]) -> dict[str, R]:
    """The rows of the package-data table ``file`` beside this module, by name, in file order: a YAML list of
    mappings, each with a string ``name`` not used before, typed by ``make_row(entry, where)`` (``where``
    names the entry in errors).

    Raises:
        ConfigError: not a list, an entry without a name, a name twice, or whatever ``make_row`` refuses.
    """
    entries = yaml.safe_load((importlib.resources.files("hourglass") / "checkpoint" / file).read_text())
    if not isinstance(entries, list):
        raise ConfigError(f"{file}: expected a list of rows")
    table: dict[str, R] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{file} entry {i}: expected a mapping with a string 'name'")
        if entry["name"] in table:
            raise ConfigError(f"{file}: the name {entry['name']!r} appears twice")
        table[entry["name"]] = make_row(entry, f"{file} entry {entry['name']!r}")
    return table


@functools.cache
def weights_table() -> dict[str, Weights]:
    """The table of published weights, by name (read once from the package data ``weights.yaml``)."""
    return read_table("weights.yaml", _row)


def list_weights(kind: str | None = None) -> list[str]:
    """Names in the table (of one ``kind``, ``pose`` or ``detector``, when given), in table order."""
    return [name for name, row in weights_table().items() if kind is None or row.kind == kind]


# --- what a source names ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A table name or a URL, resolved: what to fetch, how to check it, where it goes."""

    label: str
    urls: tuple[str, ...]
    key: str
    file: str
    check: tuple[str, str] | None
    check_note: str
    size: int | None
    max_size: int | None
    member: str | None
    family: str
    row: Published | None = None

    @property
    def archive(self) -> bool:
        return self.member is not None or self.file.lower().endswith(".zip")

    @property
    def where(self) -> str:
        """How errors name it: the URL, or the table name when it has none."""
        return self.urls[0] if self.urls else self.label


def _is_url(text: str) -> bool:
    return isinstance(text, str) and re.match(r"(?i)(https?|file)://", text) is not None


def _url_file(url: str) -> str:
    """The last part of ``url``'s path, unquoted (``download`` when empty)."""
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    return name.replace("\\", "_") or "download"


def similar_names(source: str, names: Iterable[str], limit: int = 4) -> list[str]:
    """Up to ``limit`` of ``names`` a user may have meant by ``source``: the closest spellings (:mod:`difflib`), then
    those sharing a part with it (``hg8-mpii`` -> the ``...-hg8`` rows); none for what looks like a file path."""
    if "/" in source or os.sep in source or PurePosixPath(source).suffix:
        return []
    names = list(names)
    parts = {part for part in re.split(r"[-_\s]+", source.lower()) if len(part) >= 3}
    sharing = [n for n in names if parts & set(n.lower().split("-"))]
    return list(dict.fromkeys([*difflib.get_close_matches(source, names, n=limit, cutoff=0.4), *sharing]))[:limit]


def table_source(
    row: Published, urls: Iterable[str] | None = None, member: str | None = None, family: str = "auto"
) -> Source:
    """The :class:`Source` of a table row: its URL then its mirrors (or ``urls`` instead), kept under its name.

    ``urls`` fetch the same file from elsewhere (a copy, a ``file://`` path): it is cached and checked as the
    row's, under the row's name.
    """
    return Source(
        label=row.name,
        urls=tuple(urls) if urls is not None else tuple(u for u in (row.url, *row.mirrors) if u),
        key=row.name,
        file=row.file,
        check=row.hash,
        check_note=row.hash_note or "the table's hash",
        size=row.size,
        max_size=row.max_size,
        member=member,
        family=family,
        row=row,
    )


def parse_source(source: str) -> Source:
    """The :class:`Source` a table name or a URL names.

    Raises:
        CheckpointError: neither a table name nor an http(s):// / file:// URL (the message starts with
            ``"<source>: no such checkpoint file"``, as a missing local file's does); a bad URL fragment.
    """
    table = weights_table()
    if source in table:
        row = table[source]
        return table_source(row, member=row.member, family=row.family)
    if not _is_url(source):
        close = similar_names(source, table)
        raise CheckpointError(
            f"{source}: no such checkpoint file, nor a name from `hourglass weights list` or an http(s):// or "
            "file:// URL" + (f" (did you mean {', '.join(close)}?)" if close else "")
        )
    url, _, fragment = source.partition("#")
    file = _url_file(url)
    check, note = None, ""
    if fragment:
        match = re.fullmatch(r"sha256=([0-9a-fA-F]{64})", fragment)
        if match is None:
            raise CheckpointError(f"{source}: the URL fragment must be #sha256=<64 hex digits>, got #{fragment}")
        check, note = ("sha256", match.group(1).lower()), "the URL's #sha256= fragment"
    elif (found := HASH_REGEX.search(file)) and found.group(1):
        check, note = ("sha256_prefix", found.group(1)), "the torch.hub hash prefix in the file name"
    key = "url-" + hashlib.sha256(url.encode()).hexdigest()[:16]
    return Source(source, (url,), key, file, check, note, None, None, None, "auto")


def download_path(source: str | Source) -> Path:
    """Where the file of ``source`` (a table name or URL) is, or would go, in the cache."""
    src = source if isinstance(source, Source) else parse_source(source)
    return cache_dir() / "downloads" / src.key / src.file


def converted_path(source: str | Source) -> Path:
    """Where the converted ``.safetensors`` of ``source`` is, or would go, in the cache."""
    src = source if isinstance(source, Source) else parse_source(source)
    return cache_dir() / "checkpoints" / f"{src.key}.safetensors"


# --- fetch ------------------------------------------------------------------------------------------------


def fetch(source: str, member: str | None = None, *, settings: TransferSettings | None = None) -> Path:
    """The verified file a table name or URL names, in the cache (fetched when not there yet).

    For a ``.zip`` (a URL ending in ``.zip``, or a row with a ``member``): the weights file taken out of it,
    ``member`` (a path inside the archive, or a file name found once in it), else the row's, else the one
    weights file (:data:`WEIGHT_SUFFIXES`) it holds. A detector row gives its ``.onnx``.

    Raises:
        FetchError: one line naming the URL and the cause (HTTP status, DNS, TLS, timeout, size, hash), and,
            when nothing could be fetched (every try failed, or ``HOURGLASS_OFFLINE=1``), the exact path where
            a file fetched by other means can be put.
    """
    settings = settings or TransferSettings.from_env()
    src = parse_source(str(source))
    raw = fetch_source(src, settings)
    if src.archive or member is not None:
        return _extract(src, raw, member or src.member, settings)
    return raw


def source_file(source: str | os.PathLike[str], *, settings: TransferSettings | None = None) -> Path:
    """A local file as it is; a table name or URL fetched (:func:`fetch`): the file ``convert`` reads.

    Raises:
        CheckpointError: a detector row (not weights a converter reads).
    """
    if not isinstance(source, str) or Path(source).exists():
        return Path(source)
    _refuse_detector(source)
    return fetch(source, settings=settings)


def _refuse_detector(source: str) -> None:
    row = weights_table().get(source)
    if row is not None and row.kind != "pose":
        raise CheckpointError(
            f"{source}: a person detector ({row.family} weights), not a pose checkpoint; it serves --detector {source}"
        )


def fetch_source(src: Source, settings: TransferSettings) -> Path:
    """The raw file of ``src`` in the cache (:func:`download_path`): the cached one when it passes its check,
    else fetched (a failing one once more), resuming a ``.part`` left by a cut transfer.

    Raises:
        FetchError: as :func:`fetch` says.
    """
    dest = download_path(src)
    with _locked(dest):
        if dest.is_file():
            try:
                _verify(src, dest)
                return dest
            except FetchError as err:
                if settings.offline or not src.urls:
                    raise
                _say(settings, f"{err}; fetching it again")
                dest.unlink()
        if not src.urls:
            page = f" ({src.row.page})" if src.row is not None and src.row.page else ""
            raise FetchError(
                f"{src.label}: published without a direct file URL{page}; download {src.file} by hand and put it "
                f"at {dest}"
            )
        if settings.offline:
            raise FetchError(
                f"{src.where}: not in the cache, and HOURGLASS_OFFLINE=1 forbids fetching it; put a copy fetched by "
                f"other means at {dest}"
            )
        shutil.rmtree(dest.parent / "extracted", ignore_errors=True)
        _download(src, dest, settings)
    return dest


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path.lock`` (POSIX ``flock``), so two processes never write one ``.part``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the .part then rename still never leaves a partial file in place
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class _Transient(Exception):
    """A failure that another try may not meet (timeout, reset, HTTP 5xx/429, a transfer cut short)."""


def _download(src: Source, dest: Path, settings: TransferSettings) -> None:
    """Fetch ``src`` into ``dest.part`` (trying its URLs in order, each with retries), verify it, rename it."""
    part = dest.with_name(dest.name + ".part")
    causes = []
    for url in src.urls:
        try:
            _transfer(url, part, src, settings)
            break
        except FetchError as err:
            causes.append(str(err))
    else:
        raise FetchError(f"{'; then '.join(causes)}; put a copy fetched by other means at {dest}")
    try:
        _verify(src, part)
    except FetchError as err:
        part.unlink(missing_ok=True)
        raise FetchError(f"{err}; the download was removed") from None
    os.replace(part, dest)


def _transfer(url: str, part: Path, src: Source, settings: TransferSettings) -> None:
    """GET ``url`` into ``part`` with retries and back-off, resuming what ``part`` already holds."""
    tries = 1 + max(0, settings.retries)
    for attempt in range(tries):
        try:
            _get(url, part, src, settings)
            return
        except _Transient as err:
            if attempt + 1 == tries:
                raise FetchError(f"{url}: {err} (after {tries} {'try' if tries == 1 else 'tries'})") from None
            delay = min(30.0, settings.backoff * 2**attempt)
            _say(settings, f"{url}: {err}; trying again in {delay:g} s")
            time.sleep(delay)


def _get(url: str, part: Path, src: Source, settings: TransferSettings) -> None:
    """One GET of ``url`` appended to ``part`` (``Range`` from its size), or into a fresh ``part``."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "hourglass-pose (urllib)"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=settings.timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # the .part is not a prefix the server recognises: start again
            part.unlink(missing_ok=True)
            raise _Transient(f"HTTP 416 {err.reason} for a resumed transfer") from None
        if err.code in (408, 429) or err.code >= 500:
            raise _Transient(f"HTTP {err.code} {err.reason}") from None
        raise FetchError(f"{url}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise _url_error(url, err.reason) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
        raise _Transient(_cause(err, settings)) from None
    with response:
        status = getattr(response, "status", None) or 200
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        resumed = have > 0 and status == 206 and _range_start(response.headers.get("Content-Range")) == have
        if not resumed:
            have = 0
        total = None if length is None else have + length
        cap = src.size if src.size is not None else (src.max_size or settings.max_bytes)
        if total is not None and total > cap:
            part.unlink(missing_ok=True)
            raise FetchError(f"{url}: {total:,} bytes, more than the {cap:,} expected; not fetched")
        with open(part, "ab" if resumed else "wb") as f, _progress(settings, url, total, have) as advance:
            try:
                _copy(response, f, cap, advance, url)
            except FetchError:
                part.unlink(missing_ok=True)
                raise
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as err:
                raise _Transient(_cause(err, settings) + f" after {f.tell():,} bytes") from None
            got = f.tell()
    if total is not None and got < total:
        raise _Transient(f"transfer cut short at {got:,} of {total:,} bytes")


def _copy(response: BinaryIO, f: BinaryIO, cap: int, advance: Any, url: str) -> None:
    """Copy ``response`` to the end of ``f`` in chunks, stopping (a :class:`FetchError`) past ``cap`` bytes."""
    while chunk := response.read(_CHUNK):
        if f.tell() + len(chunk) > cap:
            raise FetchError(f"{url}: more than the {cap:,} bytes expected; stopped")
        f.write(chunk)
        advance(len(chunk))


def _range_start(content_range: str | None) -> int | None:
    """The first byte of a ``Content-Range: bytes a-b/n`` header."""
    match = re.match(r"bytes (\d+)-", content_range or "")
    return int(match.group(1)) if match else None


def _cause(err: BaseException, settings: TransferSettings) -> str:
    if isinstance(err, TimeoutError | socket.timeout):
        return f"no answer within {settings.timeout:g} s"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _url_error(url: str, reason: Any) -> Exception:
    """The error for a ``URLError``'s ``reason``: DNS, TLS and missing files end at once, the rest may pass."""
    host = urllib.parse.urlsplit(url).hostname
    if isinstance(reason, socket.gaierror):
        return FetchError(f"{url}: cannot resolve the host {host} (DNS: {reason.strerror or reason})")
    if isinstance(reason, ssl.SSLError | ssl.CertificateError):
        return FetchError(f"{url}: TLS failure ({reason})")
    if isinstance(reason, FileNotFoundError | IsADirectoryError | PermissionError):
        return FetchError(f"{url}: {reason.strerror or reason}")
    if isinstance(reason, TimeoutError | socket.timeout):
        return _Transient("no answer (connecting timed out)")
    return _Transient(f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason)


@contextlib.contextmanager
def _progress(settings: TransferSettings, url: str, total: int | None, start: int) -> Iterator[Any]:
    """A function ``advance(n)`` that moves a progress bar on a terminal, or plain lines at start and end."""
    if not settings.progress:
        yield lambda n: None
        return
    began, done = time.monotonic(), [start]
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(_url_file(url), total=total, completed=start)
            yield lambda n: bar.advance(task, n)
    else:
        resume = f", resuming at {start:,} bytes" if start else ""
        size = f" ({total:,} bytes)" if total is not None else ""
        print(f"fetching {url}{size}{resume}", file=sys.stderr, flush=True)

        def advance(n: int) -> None:
            done[0] += n

        yield advance
        print(f"fetched {done[0]:,} bytes in {time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)


def _say(settings: TransferSettings, message: str) -> None:
    if settings.progress:
        print(message, file=sys.stderr, flush=True)


def _verify(src: Source, path: Path) -> None:
    """Refuse ``path`` unless it has ``src``'s size (when known) and hash (when known)."""
    if src.size is not None and path.stat().st_size != src.size:
        raise FetchError(f"{src.where}: {src.file} has {path.stat().st_size:,} bytes, expected {src.size:,}")
    if src.check is None:
        return
    algo, want = src.check
    digest = hashlib.md5(usedforsecurity=False) if algo == "md5" else hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    got = digest.hexdigest()
    if not (got.startswith(want) if algo == "sha256_prefix" else got == want):
        name = "sha256" if algo == "sha256_prefix" else algo
        expected = f"starting with {want}" if algo == "sha256_prefix" else want
        raise FetchError(f"{src.where}: {src.file} has {name} {got}, expected {expected} ({src.check_note})")


# --- archives ---------------------------------------------------------------------------------------------


def unsafe_member(name: str) -> bool:
    """Whether a zip member ``name`` would land outside the folder it is extracted to (absolute, ``..``).

    Example:
        >>> [unsafe_member(n) for n in ("hg/umich-stacked-hourglass.t7", "../x.pth", "/x.pth", "C:/x.pth")]
        [False, True, True, True]
    """
    posix = name.replace("\\", "/")
    return posix.startswith("/") or re.match(r"[A-Za-z]:", posix) is not None or ".." in posix.split("/")


def _extract(src: Source, archive: Path, member: str | None, settings: TransferSettings) -> Path:
    """The weights file ``member`` of zip ``archive`` (found as :func:`fetch` says), taken out into the cache."""
    try:
        with zipfile.ZipFile(archive) as z:
            infos = [i for i in z.infolist() if not i.is_dir()]
            climbing = [i.filename for i in z.infolist() if unsafe_member(i.filename)]
            if climbing:
                archive.unlink()
                raise FetchError(
                    f"{src.where}: member {climbing[0]!r} of {archive.name} names a place outside the archive's "
                    "folder (an absolute path or '..'); the archive is refused and removed, nothing was extracted"
                )
            info = _pick_member(archive, infos, member)
            out = archive.parent / "extracted" / PurePosixPath(info.filename).name
            if out.is_file() and out.stat().st_size == info.file_size:
                return out
            cap = src.max_size or settings.max_bytes
            if info.file_size > cap:
                raise FetchError(f"{archive}: member {info.filename} is {info.file_size:,} bytes, more than {cap:,}")

            def write(tmp: str) -> None:
                with z.open(info) as inside, open(tmp, "wb") as f:
                    _copy(inside, f, cap, lambda n: None, f"{archive}!{info.filename}")

            return atomic_write(out, write)
    except zipfile.BadZipFile as err:
        raise FetchError(f"{archive}: not a readable zip archive ({err})") from None


def _pick_member(archive: Path, infos: list[zipfile.ZipInfo], member: str | None) -> zipfile.ZipInfo:
    if member is not None:
        exact = [i for i in infos if i.filename == member]
        named = exact or [i for i in infos if PurePosixPath(i.filename).name == PurePosixPath(member).name]
        if len(named) == 1:
            return named[0]
        found = "several" if named else "no"
        raise FetchError(
            f"{archive}: {found} member {member!r}; it holds {', '.join(i.filename for i in infos[:10]) or 'nothing'}"
        )
    weights = [i for i in infos if i.filename.lower().endswith(WEIGHT_SUFFIXES)]
    if len(weights) != 1:
        raise FetchError(
            f"{archive}: {'no' if not weights else len(weights)} weights files ({', '.join(WEIGHT_SUFFIXES)}) in it; "
            f"name one with a member (it holds {', '.join(i.filename for i in infos[:10]) or 'nothing'})"
        )
    return weights[0]


# --- converted checkpoints --------------------------------------------------------------------------------


def resolve_checkpoint(source: str | os.PathLike[str], *, settings: TransferSettings | None = None) -> Path:
    """A local ``.safetensors`` checkpoint in our format for ``source``.

    A local file (or any ``os.PathLike``) is returned as it is. A table name or URL is fetched
    (:func:`fetch`), its family detected as ``hourglass convert --from auto`` detects it (a table row's
    family is used as it is), converted once into ``checkpoints/<key>.safetensors`` (written atomically) and
    that file returned from then on with no request. A file that is already one of ours is used as fetched.

    Raises:
        CheckpointError: a missing local file that is no table name or URL either; a detector row.
        FetchError: the fetch failed (see :func:`fetch`).
    """
    if not isinstance(source, str) or Path(source).exists():
        return Path(source)
    src = parse_source(source)
    _refuse_detector(source)
    out = converted_path(src)
    if out.is_file():
        return out
    raw = fetch(source, settings=settings)
    with contextlib.suppress(CheckpointError):
        read_metadata(raw)
        return raw
    with _locked(out):
        if not out.is_file():
            convert_checkpoint(src.family, raw, out)
    return out


def describe() -> list[dict[str, Any]]:
    """Every table row as its JSON form plus where it is cached: ``cached_file`` / ``cached_checkpoint``
    (paths, or None when not there)."""
    rows = []
    for name, row in weights_table().items():
        file, ckpt = download_path(name), converted_path(name)
        rows.append(
            {
                **row.row,
                "file": row.file,
                "cached_file": str(file) if file.is_file() else None,
                "cached_checkpoint": str(ckpt) if ckpt.is_file() else None,
            }
        )
    return rows
