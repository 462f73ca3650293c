"""Published data sets (``checkpoint/datasets.py``, ``hourglass data``), against a real HTTP server on 127.0.0.1.

The server is ``test_hub``'s (``http.server`` in a thread, able to cut a transfer halfway); the archives are built
here in each release's layout, at the release's full counts (2,000 and 10,000 images, each a few bytes of one tiny
JPEG) with a ``joints.mat`` of the release's shape written by scipy. The table's URLs are never requested: every
test names the server's (``url=`` / ``--url``), and an offline test names the table's only in its error.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import stat
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
from test_hub import FAST, Server
from typer.testing import CliRunner

from hourglass.checkpoint import datasets
from hourglass.checkpoint.datasets import archive_path, data_dir, data_table, get_dataset
from hourglass.checkpoint.hub import TransferSettings, weights_table
from hourglass.cli import app
from hourglass.errors import ConfigError, DataError, FetchError

JPEG = cv2.imencode(".jpg", np.full((6, 4, 3), 128, np.uint8))[1].tobytes()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache for every test, online unless a test says otherwise."""
    monkeypatch.setenv("HOURGLASS_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HOURGLASS_OFFLINE", raising=False)
    return tmp_path / "cache"


def joints(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(sum(shape)).random(shape) * 100


def release(name: str, root: str = "", shape: tuple[int, ...] | None = None, **changes: bytes | None) -> bytes:
    """The archive of release ``name`` as published (``root``: inside one folder), each member named in ``changes``
    replaced by its bytes, or left out for None."""
    row = data_table()[name]
    mat = io.BytesIO()
    scipy.io.savemat(mat, {"joints": joints(shape or row.shape)})
    members: dict[str, bytes | None] = {"README.txt": b"Leeds Sports Pose\n", row.annotations: mat.getvalue()}
    members |= dict.fromkeys(row.image_names(), JPEG)
    if name == "lsp":
        members |= dict.fromkeys(("visualized/im0001.jpg", "visualized/im0002.jpg"), JPEG)
    members |= changes
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for member, data in members.items():
            if data is not None:
                z.writestr(root + member, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def lsp_zip() -> bytes:
    return release("lsp")


def serve_release(server: Server, data: bytes, name: str = "lsp") -> str:
    path = f"/research/{data_table()[name].file}"
    server.files[path] = data
    return server.url(path)


def nothing_unpacked(home: Path) -> bool:
    return not (home / "data").exists() or not os.listdir(home / "data")


def test_the_table_names_the_official_archives_and_their_layout() -> None:
    lsp, lspet = data_table()["lsp"], data_table()["lspet"]
    assert (lsp.url, lsp.file, lsp.page) == (
        "http://sam.johnson.io/research/lsp_dataset.zip",
        "lsp_dataset.zip",
        "http://sam.johnson.io/research/lsp.html",
    )
    assert (lspet.url, lspet.file) == ("http://sam.johnson.io/research/lspet_dataset.zip", "lspet_dataset.zip")
    assert (lsp.shape, lsp.count, lsp.image_names()[0], lsp.image_names()[-1]) == (
        (3, 14, 2000),
        2000,
        "images/im0001.jpg",
        "images/im2000.jpg",
    )
    assert (lspet.shape, lspet.count, lspet.image_names()[0], lspet.image_names()[-1]) == (
        (14, 3, 10000),
        10000,
        "images/im00001.jpg",
        "images/im10000.jpg",
    )
    for row in (lsp, lspet):
        assert row.hash is None and row.hash_note.startswith("no checksum"), row.name
        assert row.row["sources"] and row.row["status"] and row.row["licence"] and row.recipe_note, row.name
        assert "data.format=lsp" in row.recipe and "data.train.annotations={dir}/joints.mat" in row.recipe
    assert "data.holdout=2000" in lspet.recipe  # never trains on 8,001-10,000
    assert not set(data_table()) & set(weights_table())  # both are kept under downloads/<name>/


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"annotations": {"member": "joints.mat", "variable": "joints"}}, "annotations must be {member, variable"),
        ({"annotations": {"member": "joints.mat", "variable": "joints", "shape": [3, 0]}}, "positive whole numbers"),
        ({"images": {"folder": "images", "name": "im{:04d}.jpg", "count": 0}}, "images.count must be a positive"),
        ({"images": {"folder": "images", "name": "im{x}.jpg", "count": 2}}, "does not format an image number"),
        ({"keep": ["../README.txt"]}, "the member '../README.txt' is outside the archive's folder"),
        ({"url": "ftp://example.org/lsp.zip"}, "is not an http(s):// or file:// URL"),
    ],
)
def test_a_malformed_row_is_refused_naming_it(change, said) -> None:
    entry = {**data_table()["lsp"].row, **change}
    with pytest.raises(ConfigError, match=re.escape(said)) as err:
        datasets._data_row(entry, "datasets.yaml entry 'lsp'")
    assert str(err.value).startswith("datasets.yaml entry 'lsp': ")


def test_lsp_is_fetched_checked_and_unpacked_and_a_second_get_is_a_no_op(server, lsp_zip, home) -> None:
    url = serve_release(server, lsp_zip)
    got = get_dataset("lsp", url=url, settings=FAST)
    assert got.fresh and got.path == home / "data" / "lsp" == data_dir("lsp")
    assert sorted(os.listdir(got.path)) == ["README.txt", "images", "joints.mat"]  # not visualized/
    images = sorted(os.listdir(got.path / "images"))
    assert (
        len(images) == 2000 and images[0] == "im0001.jpg" and (got.path / "images" / "im2000.jpg").read_bytes() == JPEG
    )
    np.testing.assert_array_equal(scipy.io.loadmat(got.path / "joints.mat")["joints"], joints((3, 14, 2000)))
    assert archive_path("lsp") == home / "downloads" / "lsp" / "lsp_dataset.zip"
    assert archive_path("lsp").read_bytes() == lsp_zip
    assert os.listdir(home / "data") == ["lsp"]  # no temporary folder left
    assert f"data.train.annotations={got.path}/joints.mat" in got.recipe and "data.holdout=1000" in got.recipe

    again = get_dataset("lsp", url=url, settings=FAST)
    assert not again.fresh and again.path == got.path and len(server.requests) == 1
    server.stop()
    assert not get_dataset("lsp", settings=FAST).fresh  # neither the archive nor a request is needed


def test_lspet_inside_a_folder_is_unpacked_alike_and_unpacked_again_from_the_cache(server, home) -> None:
    url = serve_release(server, release("lspet", root="lspet_dataset/"), "lspet")
    got = get_dataset("lspet", url=url, settings=FAST)
    assert sorted(os.listdir(got.path)) == ["README.txt", "images", "joints.mat"]
    assert len(os.listdir(got.path / "images")) == 10000 and (got.path / "images" / "im10000.jpg").is_file()
    assert scipy.io.loadmat(got.path / "joints.mat")["joints"].shape == (14, 3, 10000)
    (got.path / "images" / "im05000.jpg").unlink()  # an incomplete folder is unpacked again, from the cache
    assert get_dataset("lspet", url=url, settings=FAST).fresh and (got.path / "images" / "im05000.jpg").is_file()
    assert get_dataset("lspet", url=url, force=True, settings=FAST).fresh
    assert len(server.requests) == 1 and os.listdir(home / "data") == ["lspet"]


def test_a_cut_transfer_leaves_a_part_that_the_next_get_resumes(server, lsp_zip) -> None:
    url = serve_release(server, lsp_zip)
    server.cut_once.add("/research/lsp_dataset.zip")
    once = TransferSettings(timeout=5.0, retries=0, progress=False)
    with pytest.raises(FetchError) as err:
        get_dataset("lsp", url=url, settings=once)
    assert "transfer cut short" in str(err.value) and "\n" not in str(err.value)
    part = archive_path("lsp").with_name("lsp_dataset.zip.part")
    assert part.stat().st_size == len(lsp_zip) // 2 and not archive_path("lsp").exists()
    assert get_dataset("lsp", url=url, settings=once).fresh
    assert server.requests == [
        ("/research/lsp_dataset.zip", None),
        ("/research/lsp_dataset.zip", f"bytes={len(lsp_zip) // 2}-"),
    ]
    assert archive_path("lsp").read_bytes() == lsp_zip and not part.exists()


def _bad_crc() -> bytes:
    data = release("lsp", **{"images/im0007.jpg": b"a picture that will not match its CRC-32"})
    return data.replace(b"a picture that will", b"A picture that will")


def _with_a_link() -> bytes:
    buffer = io.BytesIO(release("lsp"))
    with zipfile.ZipFile(buffer, "a") as z:
        link = zipfile.ZipInfo("images/latest.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("archive", "said"),
    [
        (lambda: release("lsp", **{"../../evil.jpg": JPEG}), "member '../../evil.jpg' names a place outside"),
        (lambda: release("lsp", **{"/abs/evil.jpg": JPEG}), "member '/abs/evil.jpg' names a place outside"),
        (_with_a_link, "member 'images/latest.jpg' is a symbolic link"),
        (lambda: release("lsp", **{"joints.mat": None}), "no joints.mat at its top or in one folder"),
        (
            lambda: release("lsp", **{"images/im1234.jpg": None}),
            "not the lsp release: 1 of its 2,000 images are missing (the first: images/im1234.jpg)",
        ),
        (
            lambda: release("lsp", **{"images/im2001.jpg": JPEG}),
            "1 more images than its 2,000 (the first: images/im2001.jpg)",
        ),
        (
            lambda: release("lsp", shape=(14, 3, 2000)),
            "joints.mat holds 'joints' of shape (14, 3, 2000), expected (3, 14, 2000) (the lsp release's)",
        ),
        (lambda: b"<!DOCTYPE html>\n<html>School of Computing</html>", "not a zip archive (it begins like a web page"),
        (_bad_crc, "Bad CRC-32 for file 'images/im0007.jpg'"),
    ],
    ids=["climbs-out", "absolute", "link", "no-joints", "missing-image", "extra-image", "shape", "web-page", "crc"],
)
def test_a_foreign_or_damaged_archive_is_refused_in_one_line_and_removed(server, home, tmp_path, archive, said) -> None:
    url = serve_release(server, archive())
    with pytest.raises(FetchError) as err:
        get_dataset("lsp", url=url, settings=FAST)
    message = str(err.value)
    assert message.startswith(f"{archive_path('lsp')}: ") and said in message, message
    assert message.endswith("; the archive was removed, nothing was unpacked") and "\n" not in message
    assert not archive_path("lsp").exists() and nothing_unpacked(home)
    assert not list(tmp_path.rglob("evil*"))


def test_a_published_hash_is_checked(server, lsp_zip, monkeypatch) -> None:
    lsp = data_table()["lsp"]
    wrong = dataclasses.replace(lsp, hash=("sha256", "0" * 64), hash_note="a test's hash")
    monkeypatch.setattr(datasets, "data_table", lambda: {"lsp": wrong})
    url = serve_release(server, lsp_zip)
    with pytest.raises(FetchError) as err:
        get_dataset("lsp", url=url, settings=FAST)
    assert str(err.value).startswith(f"{url}: lsp_dataset.zip has sha256 ")
    assert f"expected {'0' * 64} (a test's hash); the download was removed" in str(err.value)
    assert not archive_path("lsp").exists() and "\n" not in str(err.value)


def test_no_answer_and_offline_are_one_line_and_a_copy_put_there_is_unpacked(
    monkeypatch, lsp_zip, tmp_path, home
) -> None:
    stopped = Server()  # a port where nothing answers any more
    url = stopped.url("/research/lsp_dataset.zip")
    stopped.stop()
    with pytest.raises(FetchError) as err:
        get_dataset("lsp", url=url, settings=FAST)
    message = str(err.value)
    assert message.startswith(f"{url}: ") and "(after 3 tries)" in message and "\n" not in message, message
    assert message.endswith(f"put a copy fetched by other means at {archive_path('lsp')}")
    monkeypatch.setenv("HOURGLASS_OFFLINE", "1")
    with pytest.raises(FetchError) as err:
        get_dataset("lsp")
    assert str(err.value) == (
        "http://sam.johnson.io/research/lsp_dataset.zip: not in the cache, and HOURGLASS_OFFLINE=1 forbids fetching "
        f"it; put a copy fetched by other means at {archive_path('lsp')}"
    )
    archive_path("lsp").parent.mkdir(parents=True, exist_ok=True)
    archive_path("lsp").write_bytes(lsp_zip)
    assert get_dataset("lsp").fresh and len(os.listdir(home / "data" / "lsp" / "images")) == 2000
    monkeypatch.delenv("HOURGLASS_OFFLINE")
    archive_path("lsp").unlink()
    copy = tmp_path / "downloaded" / "lsp_dataset.zip"  # --url also takes a file fetched by other means
    copy.parent.mkdir()
    copy.write_bytes(lsp_zip)
    assert get_dataset("lsp", url=str(copy), force=True, settings=FAST).fresh
    assert archive_path("lsp").read_bytes() == lsp_zip
    with pytest.raises(DataError, match=r"lpset: no such data set .*\(did you mean lspet, lsp\?\)"):
        get_dataset("lpset")


def test_cli_data_list_path_and_get(server, lsp_zip, home) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["data", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == ["lsp", "lspet"] and all(r["unpacked"] is None for r in rows)
    table = runner.invoke(app, ["data", "list"], env={"COLUMNS": "80"})
    assert table.exit_code == 0 and max(map(len, table.stdout.splitlines())) <= 80, table.stdout
    assert "lspet" in table.stdout and "3x14x2000" in table.stdout and "none published" in table.stdout
    assert runner.invoke(app, ["data", "path", "lsp"]).stdout.strip() == str(home / "data" / "lsp")
    shown = runner.invoke(app, ["data", "path", "lspet", "--archive"]).stdout.strip()
    assert shown == str(home / "downloads" / "lspet" / "lspet_dataset.zip")

    url = serve_release(server, lsp_zip)
    got = runner.invoke(app, ["data", "get", "lsp", "--url", url])
    assert got.exit_code == 0, got.output
    folder = home / "data" / "lsp"
    said = " ".join(got.stderr.split())
    assert got.stdout.strip() == str(folder) and f"fetching {url} ({len(lsp_zip):,} bytes)" in said
    assert f"lsp: 2,000 images and joints.mat (3, 14, 2000) unpacked into {folder}" in said
    assert (
        f"recipe settings: --set data.format=lsp --set data.train.annotations={folder}/joints.mat "
        f"--set data.train.images={folder}/images"
    ) in said
    again = runner.invoke(app, ["data", "get", "lsp"])
    assert again.exit_code == 0 and again.stdout.strip() == str(folder)
    assert f"already unpacked in {folder} (--force unpacks it again)" in " ".join(again.stderr.split())
    forced = runner.invoke(app, ["data", "get", "lsp", "--force"])
    assert forced.exit_code == 0 and "unpacked into" in forced.stderr and len(server.requests) == 1
    assert json.loads(runner.invoke(app, ["data", "list", "--json"]).stdout)[0]["unpacked"] == str(folder)

    wrong = runner.invoke(app, ["data", "get", "lpset"])
    assert wrong.exit_code == 1 and "error: lpset: no such data set" in wrong.output
    offline = runner.invoke(app, ["data", "get", "lspet"], env={"HOURGLASS_OFFLINE": "1"})
    lines = [line for line in offline.output.splitlines() if line.strip()]
    assert offline.exit_code == 1 and len(lines) == 1 and "Traceback" not in offline.output
    assert " ".join(offline.output.split()).startswith(
        "error: http://sam.johnson.io/research/lspet_dataset.zip: not in the cache, and HOURGLASS_OFFLINE=1"
    ), lines
