"""Published data sets by name: the official archive fetched as published weights are (:mod:`.hub`: verified,
resumable, cached, one line offline), its members checked, and unpacked into ``$HOURGLASS_HOME/data/<name>/``.

``datasets.yaml`` beside this module (package data, read by :func:`.hub.read_table` as ``weights.yaml`` is) has a
row per data set: the archive's URL, its hash when one is published (none is for LSP and LSPet), and the layout the
archive must have: the annotations member and the shape of its variable, the images' folder, names and count.
:func:`get_dataset` (``hourglass data get NAME``):

1. returns at once, with no request, when ``data/<name>/`` is there with its annotations and every image;
2. takes the archive from the cache (``downloads/<name>/<file>``) or fetches it (:func:`.hub.fetch_source`: a
   ``.part`` renamed once complete, a cut transfer resumed with ``Range``, the row's hash and size checked;
   ``HOURGLASS_OFFLINE=1``, or no answer, is one line naming where to put a copy fetched by other means);
3. checks the members before writing anything: no name that leaves the folder (absolute, ``..``) or is a link, the
   annotations member once (at the top or in one folder, the archive's root), exactly the images
   ``<root><folder>/<name % i>`` for ``i`` = 1 ... count, at most ``HOURGLASS_MAX_BYTES`` to unpack;
4. unpacks those members and the row's ``keep`` (the release's README) into a temporary folder beside the
   destination, each member's CRC-32 checked as it is read, checks the shape of the annotations variable, and
   renames the folder into place (:func:`hourglass.files.replace_folder`). Other members (LSP's ``visualized/``
   pictures) stay in the archive.

An archive refused in step 3 or 4 is removed from the cache (the next ``get`` fetches it again) and the error is
one line naming the archive and what is wrong. The folder holds ``joints.mat``, ``images/`` and ``README.txt``,
as ``data.format: lsp`` reads them (``docs/DATA.md``).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import shlex
import shutil
import stat
import urllib.parse
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from hourglass.checkpoint.hub import (
    Published,
    TransferSettings,
    download_path,
    fetch_source,
    published_fields,
    read_table,
    similar_names,
    table_source,
    unsafe_member,
)
from hourglass.errors import ConfigError, DataError, FetchError
from hourglass.files import cache_dir, make_temp_dir, replace_folder

_CHUNK = 1 << 20


@dataclass(frozen=True)
class DataArchive(Published):
    """One row of the table of published data sets (``datasets.yaml``; its header comment names every field).

    ``annotations`` is a member's path below the archive's root, ``shape`` that of its ``variable``; image ``i``
    (1-based) is ``<images>/<image_name.format(i)>``, for ``i`` up to ``count``.
    """

    title: str
    annotations: str
    variable: str
    shape: tuple[int, ...]
    images: str
    image_name: str
    count: int
    keep: tuple[str, ...]
    recipe: tuple[str, ...]
    recipe_note: str

    def image_names(self) -> list[str]:
        """The images' paths below the archive's root, in order.

        Example:
            >>> lsp = data_table()["lsp"]
            >>> lsp.image_names()[:2], lsp.image_names()[-1], lsp.shape
            (['images/im0001.jpg', 'images/im0002.jpg'], 'images/im2000.jpg', (3, 14, 2000))
        """
        return [f"{self.images}/{self.image_name.format(i)}" for i in range(1, self.count + 1)]


def _data_row(entry: dict[str, Any], where: str) -> DataArchive:
    """A typed :class:`DataArchive` of a ``datasets.yaml`` entry; a malformed one is a :class:`ConfigError`."""
    notes, images = entry.get("annotations"), entry.get("images")
    if not (isinstance(notes, dict) and {"member", "variable", "shape"} <= set(notes)):
        raise ConfigError(f"{where}: annotations must be {{member, variable, shape}}, got {notes!r}")
    if not (isinstance(images, dict) and {"folder", "name", "count"} <= set(images)):
        raise ConfigError(f"{where}: images must be {{folder, name, count}}, got {images!r}")
    shape = notes["shape"]
    if not (isinstance(shape, list) and shape and all(isinstance(n, int) and n > 0 for n in shape)):
        raise ConfigError(f"{where}: annotations.shape must be a list of positive whole numbers, got {shape!r}")
    count = images["count"]
    if not (isinstance(count, int) and count > 0):
        raise ConfigError(f"{where}: images.count must be a positive whole number, got {count!r}")
    try:
        first = str(images["name"]).format(1)
    except (IndexError, KeyError, ValueError) as err:
        raise ConfigError(f"{where}: images.name {images['name']!r} does not format an image number ({err})") from None
    for member in (notes["member"], f"{images['folder']}/{first}", *(entry.get("keep") or ())):
        if unsafe_member(str(member)):
            raise ConfigError(f"{where}: the member {member!r} is outside the archive's folder")
    return DataArchive(
        **published_fields(entry, where),
        title=str(entry.get("title", entry["name"])),
        annotations=str(notes["member"]),
        variable=str(notes["variable"]),
        shape=tuple(shape),
        images=str(images["folder"]).rstrip("/"),
        image_name=str(images["name"]),
        count=count,
        keep=tuple(str(k) for k in entry.get("keep") or ()),
        recipe=tuple(str(s) for s in entry.get("recipe") or ()),
        recipe_note=str(entry.get("recipe_note", "")),
    )


@functools.cache
def data_table() -> dict[str, DataArchive]:
    """The table of published data sets, by name (read once from the package data ``datasets.yaml``)."""
    return read_table("datasets.yaml", _data_row)


def list_datasets() -> list[str]:
    """Names in the table of published data sets, in table order."""
    return list(data_table())


def dataset_row(name: str) -> DataArchive:
    """The row of data set ``name``.

    Raises:
        DataError: no such name (the message says which names are close).
    """
    table = data_table()
    if name not in table:
        close = similar_names(name, table)
        hint = f"did you mean {', '.join(close)}?" if close else f"the names: {', '.join(table)}"
        raise DataError(f"{name}: no such data set in `hourglass data list` ({hint})")
    return table[name]


def data_dir(name: str) -> Path:
    """Where data set ``name`` is, or would be, unpacked: ``<cache>/data/<name>``."""
    return cache_dir() / "data" / dataset_row(name).name


def archive_path(name: str) -> Path:
    """Where the archive of data set ``name`` is, or would go, in the cache (put a copy fetched by other means
    there, and ``get`` unpacks it with no request)."""
    return download_path(table_source(dataset_row(name)))


@dataclass(frozen=True)
class Unpacked:
    """A data set in its folder: ``fresh`` when this call unpacked it, False when it was there already."""

    row: DataArchive
    path: Path
    fresh: bool

    @property
    def recipe(self) -> list[str]:
        """The row's recipe settings with the folder filled in, each ready for ``--set`` (quoted for a shell)."""
        return [shlex.quote(s.replace("{dir}", str(self.path))) for s in self.row.recipe]


def get_dataset(
    name: str, *, url: str | None = None, force: bool = False, settings: TransferSettings | None = None
) -> Unpacked:
    """Data set ``name`` unpacked in :func:`data_dir`: at once when it is there, else from its archive, taken from
    the cache or fetched from the table's URLs (from ``url`` instead when given: a copy elsewhere, an
    ``http(s)://`` or ``file://`` URL or a local file, fetched and checked as the table's archive). ``force``
    unpacks it again from the archive (fetched only when the cache has none that passes its checks).

    Raises:
        DataError: no such data set.
        ConfigError: ``url`` is neither a URL nor a file.
        FetchError: one line: the fetch failed (its URL and cause, and where to put a copy fetched by other
            means), or the archive is refused (named, with what is wrong; it is removed from the cache).
    """
    row = dataset_row(name)
    out = data_dir(name)
    if not force and _complete(row, out):
        return Unpacked(row, out, fresh=False)
    settings = settings or TransferSettings.from_env()
    archive = fetch_source(table_source(row, urls=None if url is None else [_as_url(url)]), settings)
    with _refused_removes(archive):
        _unpack(row, archive, out, settings.max_bytes)
    return Unpacked(row, out, fresh=True)


def describe_datasets() -> list[dict[str, Any]]:
    """Every table row as its JSON form plus where it is: ``unpacked`` (the folder) and ``cached_archive`` (paths,
    or None when not there)."""
    rows = []
    for name, row in data_table().items():
        out, archive = data_dir(name), archive_path(name)
        rows.append(
            {
                **row.row,
                "file": row.file,
                "unpacked": str(out) if _complete(row, out) else None,
                "cached_archive": str(archive) if archive.is_file() else None,
            }
        )
    return rows


def _as_url(url: str) -> str:
    """``url`` as given, or a local file's ``file://`` URL."""
    if urllib.parse.urlsplit(url).scheme.lower() in ("http", "https", "file"):
        return url
    if Path(url).is_file():
        return Path(url).resolve().as_uri()
    raise ConfigError(f"--url {url}: neither an http(s):// or file:// URL nor a file")


def _complete(row: DataArchive, out: Path) -> bool:
    """Whether ``out`` holds the row's annotations and every one of its images."""
    images = out / row.images
    if not (out / row.annotations).is_file() or not images.is_dir():
        return False
    return {PurePosixPath(n).name for n in row.image_names()} <= set(os.listdir(images))


@contextlib.contextmanager
def _refused_removes(archive: Path) -> Iterator[None]:
    """Turn what a damaged or foreign archive raises into one :class:`FetchError` and remove the archive."""
    try:
        yield
    except (FetchError, zipfile.BadZipFile, zlib.error, EOFError) as err:
        archive.unlink(missing_ok=True)
        message = str(err) if isinstance(err, FetchError) else f"{archive}: {err}"
        raise FetchError(f"{message}; the archive was removed, nothing was unpacked") from None


def _unpack(row: DataArchive, archive: Path, out: Path, max_bytes: int) -> None:
    """Check the members of zip ``archive`` against ``row``, then unpack them into ``out`` (see the module's steps)."""
    try:
        z = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as err:
        with open(archive, "rb") as f:
            page = f.read(512).lstrip().startswith(b"<")
        why = "it begins like a web page: the link may have moved" if page else str(err)
        raise FetchError(f"{archive}: not a zip archive ({why})") from None
    with z:
        members = _plan(row, archive, z.infolist(), max_bytes)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = make_temp_dir(out.parent, f".{row.name}.")
        try:
            for path, info in members.items():
                target = tmp / path
                target.parent.mkdir(parents=True, exist_ok=True)
                _copy_member(z, info, target)
            _check_annotations(row, archive, tmp / row.annotations)
            replace_folder(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _plan(row: DataArchive, archive: Path, infos: list[zipfile.ZipInfo], max_bytes: int) -> dict[str, zipfile.ZipInfo]:
    """``{path below the folder: member}`` to unpack, once every member is found safe and the layout the row's.

    Raises:
        FetchError: a member that leaves the folder or is a link, a name twice, the annotations missing or
            more than once, images missing or more than the row's, more than ``max_bytes`` to unpack.
    """
    for info in infos:
        if unsafe_member(info.filename):
            raise FetchError(
                f"{archive}: member {info.filename!r} names a place outside the archive's folder (an absolute path "
                "or '..')"
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise FetchError(f"{archive}: member {info.filename!r} is a symbolic link")
    files = [i for i in infos if not i.is_dir()]
    twice = [n for n, k in collections.Counter(i.filename for i in files).items() if k > 1]
    if twice:
        raise FetchError(f"{archive}: member {twice[0]!r} appears more than once")
    by_name = {i.filename: i for i in files}
    notes = row.annotations
    found = [n for n in by_name if n == notes or (n.endswith("/" + notes) and n[: -len(notes)].count("/") == 1)]
    if len(found) != 1:
        held = ", ".join(list(by_name)[:5]) or "nothing"
        many = f"{len(found)} copies of" if found else "no"
        raise FetchError(f"{archive}: {many} {row.annotations} at its top or in one folder (it holds {held} ...)")
    root = found[0][: -len(row.annotations)]
    wanted = [root + n for n in row.image_names()]
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise FetchError(
            f"{archive}: not the {row.name} release: {len(missing):,} of its {row.count:,} images are missing "
            f"(the first: {missing[0]})"
        )
    folder, suffix = f"{root}{row.images}/", PurePosixPath(row.image_name).suffix.lower()
    extra = sorted(set(n for n in by_name if n.startswith(folder) and n.lower().endswith(suffix)) - set(wanted))
    if extra:
        raise FetchError(
            f"{archive}: not the {row.name} release: {len(extra):,} more images than its {row.count:,} (the first: "
            f"{extra[0]})"
        )
    members = {n[len(root) :]: by_name[n] for n in (root + row.annotations, *wanted)}
    members |= {k: by_name[root + k] for k in row.keep if root + k in by_name}
    total = sum(i.file_size for i in members.values())
    if total > max_bytes:
        raise FetchError(f"{archive}: {total:,} bytes to unpack, more than the {max_bytes:,} allowed")
    return members


def _copy_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Write member ``info`` to ``target``; zipfile checks its CRC-32 at its end, its size is checked here."""
    with z.open(info) as inside, open(target, "wb") as f:
        while chunk := inside.read(_CHUNK):
            if f.tell() + len(chunk) > info.file_size:
                raise FetchError(f"{z.filename}: member {info.filename} holds more than the {info.file_size:,} bytes")
            f.write(chunk)


def _check_annotations(row: DataArchive, archive: Path, path: Path) -> None:
    """Refuse an annotations file whose variable is missing or of another shape than the row's."""
    import scipy.io

    try:
        variables = {name: shape for name, shape, _ in scipy.io.whosmat(path)}
    except (ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError) as err:
        raise FetchError(f"{archive}: {row.annotations} is not a MATLAB file scipy reads ({err})") from None
    got = variables.get(row.variable)
    if got != row.shape:
        what = f"holds {row.variable!r} of shape {got}" if got is not None else f"has no variable {row.variable!r}"
        raise FetchError(f"{archive}: {row.annotations} {what}, expected {row.shape} (the {row.name} release's)")
