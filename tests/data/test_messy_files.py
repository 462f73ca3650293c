"""The flaws of real annotation files, each made by altering a copy of the real samples
(``../shared/data/real-samples``): a warning naming file and field where only drawing or one record is
touched (``skip_bad`` drops a bad record), a ``DataError`` naming file, record and field where training would
be corrupted, never a traceback. Images: EXIF orientation, grayscale, CMYK, 16-bit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hourglass.data import COCO_17, COCOKeypoints, DataError, HeatmapCodec, MPIIDataset

CODEC = HeatmapCodec((128, 96), (32, 24), 1.0)


@pytest.fixture
def coco(tmp_path: Path, real_samples_dir: Path) -> Path:
    """A writable copy of the real COCO samples."""
    return Path(shutil.copytree(real_samples_dir / "coco", tmp_path / "coco"))


def _alter(folder: Path, change) -> Path:
    doc = json.loads((folder / "test_coco.json").read_text())
    change(doc)
    out = folder / "altered.json"
    out.write_text(json.dumps(doc))
    return out


def _labelled(doc: dict) -> list[dict]:
    return [a for a in doc["annotations"] if any(v > 0 for v in a["keypoints"][2::3])]


def test_the_real_file_loads_cleanly(coco: Path, recwarn: pytest.WarningsRecorder) -> None:
    ds = COCOKeypoints(coco / "test_coco.json", coco, codec=CODEC)
    assert len(ds) == 12 and ds.skeleton is COCO_17  # 14 people, 2 without keypoints left out
    assert not [w for w in recwarn if "hourglass" in str(w.filename) or "test_coco" in str(w.message)]


def test_skeleton_entry_naming_a_missing_joint_warns(coco: Path) -> None:
    path = _alter(coco, lambda d: d["categories"][0]["skeleton"].append([17, 18]))
    with pytest.warns(UserWarning, match=r"altered.json: category 'person': 'skeleton' entries \[\[17, 18\]\]"):
        ds = COCOKeypoints(path, coco, codec=CODEC)
    assert len(ds) == 12 and ds.skeleton is COCO_17


def test_box_of_zero_size_is_an_error_or_skipped(coco: Path) -> None:
    def flatten(doc: dict) -> None:
        _labelled(doc)[2]["bbox"][2] = 0.0

    path = _alter(coco, flatten)
    victim = _labelled(json.loads(path.read_text()))[2]["id"]
    with pytest.raises(DataError, match=rf"altered.json: annotation id {victim} .*box of zero size"):
        COCOKeypoints(path, coco, codec=CODEC)
    with pytest.warns(UserWarning, match=rf"skipping: .*annotation id {victim}"):
        ds = COCOKeypoints(path, coco, codec=CODEC, skip_bad=True)
    assert len(ds) == 11


def test_keypoints_outside_the_image_warn_and_become_unlabelled(coco: Path) -> None:
    def push(doc: dict) -> None:
        ann = _labelled(doc)[0]
        width = next(i["width"] for i in doc["images"] if i["id"] == ann["image_id"])
        ann["keypoints"][0] = width + 50  # the nose, labelled

    path = _alter(coco, push)
    first = _labelled(json.loads(path.read_text()))[0]
    with pytest.warns(UserWarning, match=rf"altered.json: annotations \[{first['id']}\]: labelled 'keypoints' outside"):
        ds = COCOKeypoints(path, coco, codec=CODEC)
    row = next(i for i, r in enumerate(ds.records) if r.bbox[0] == pytest.approx(first["bbox"][0]))
    assert ds.records[row].visible[0] == 0 and ds.records[row].visible[1] == 1
    assert len(ds) == 12


@pytest.mark.parametrize("field", ["annotations", "images"])
def test_duplicate_ids_are_an_error(coco: Path, field: str) -> None:
    def duplicate(doc: dict) -> None:
        doc[field][1]["id"] = doc[field][0]["id"]

    path = _alter(coco, duplicate)
    with pytest.raises(DataError, match=rf"altered.json: {field}\[1\]: duplicate 'id'"):
        COCOKeypoints(path, coco, codec=CODEC)


def test_missing_image_is_an_error_or_skipped(coco: Path) -> None:
    (coco / "000000040083.jpg").unlink()
    ds = COCOKeypoints(coco / "test_coco.json", coco, codec=CODEC)
    missing = next(i for i, r in enumerate(ds.records) if r.image_file == "000000040083.jpg")
    with pytest.raises(DataError, match=rf"test_coco.json: record {missing}: image .*000000040083.jpg is missing"):
        ds[missing]
    ds = COCOKeypoints(coco / "test_coco.json", coco, codec=CODEC, skip_bad=True)
    with pytest.warns(UserWarning, match="000000040083.jpg is missing"):
        sample = ds[missing]
    in_that_image = sum(r.image_file == "000000040083.jpg" for r in ds.records)  # its two people
    assert sample["meta"]["image_file"] != "000000040083.jpg" and ds.bad_count == in_that_image == 2


def _sample_image(coco: Path, ann_file: Path, image_file: str) -> np.ndarray:
    ds = COCOKeypoints(ann_file, coco, codec=CODEC)
    i = next(i for i, r in enumerate(ds.records) if r.image_file == image_file)
    return ds[i]["image"].numpy()


def test_exif_orientation_follows_the_recorded_size(coco: Path) -> None:
    """Pixels stored turned with an EXIF tag that turns them back: the annotation's width/height (the picture
    as shown) picks the EXIF-applied orientation; a size that fits neither way is an error."""
    name = "000000000785.jpg"
    reference = _sample_image(coco, coco / "test_coco.json", name)
    original = Image.open(coco / name)
    exif = original.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    original.transpose(Image.Transpose.ROTATE_90).save(coco / name, exif=exif, quality=95)
    turned = _sample_image(coco, coco / "test_coco.json", name)
    assert np.abs(turned - reference).mean() < 0.03  # JPEG re-encoding only
    raw = cv2.imread(str(coco / name), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert raw.shape[:2] == (640, 425)  # stored turned: the raw grid would not fit the annotation
    path = _alter(coco, lambda d: d["images"][0].update(width=500))
    with pytest.raises(DataError, match=rf"{name} is 425x640 pixels but the annotation file records width 500"):
        _sample_image(coco, path, name)


def test_exif_tag_on_an_image_annotated_as_stored_is_ignored(coco: Path) -> None:
    """COCO's own convention: coordinates in the stored grid, whatever the tag says."""
    name = "000000000785.jpg"
    reference = _sample_image(coco, coco / "test_coco.json", name)
    original = Image.open(coco / name)
    exif = original.getexif()
    exif[0x0112] = 6
    original.save(coco / name, exif=exif, quality=95)
    assert np.abs(_sample_image(coco, coco / "test_coco.json", name) - reference).mean() < 0.03


@pytest.mark.parametrize("mode", ["L", "CMYK", "I;16", "RGBA"])
def test_grayscale_cmyk_16_bit_and_alpha_images(coco: Path, mode: str) -> None:
    name = "000000196141.jpg"
    reference = _sample_image(coco, coco / "test_coco.json", name)
    rgb = np.asarray(Image.open(coco / name).convert("RGB"))
    if mode == "I;16":  # 16-bit colour PNG through OpenCV (PIL writes 16-bit grey only)
        new_name = name.replace(".jpg", ".png")
        cv2.imwrite(str(coco / new_name), (rgb[..., ::-1].astype(np.uint16) * 257))
    elif mode == "RGBA":
        new_name = name.replace(".jpg", ".png")
        Image.open(coco / name).convert("RGBA").save(coco / new_name)
    else:
        new_name = name
        Image.open(coco / name).convert(mode).save(coco / name, quality=95)
    path = _alter(coco, lambda d: [i.update(file_name=new_name) for i in d["images"] if i["file_name"] == name])
    image = _sample_image(coco, path, new_name)
    assert image.shape == reference.shape and image.dtype == np.float32
    if mode == "L":
        np.testing.assert_array_equal(image[0], image[1])
        grey = reference.mean(axis=0)
        assert np.abs(image[0] - grey).mean() < 0.05
    else:
        assert np.abs(image - reference).mean() < 0.03


def test_mpii_record_flaws_are_errors_or_skipped(tmp_path: Path, real_samples_dir: Path) -> None:
    doc = json.loads((real_samples_dir / "mpii" / "test_mpii.json").read_text())
    doc[3]["joints"] = doc[3]["joints"][:15]
    doc[4]["scale"] = 0.0
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"mpii.json: record 3: joints have shape \(15, 2\), expected \(16, 2\)"):
        MPIIDataset(path, real_samples_dir / "mpii")
    del doc[3]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"mpii.json: record 3: box of zero size"):
        MPIIDataset(path, real_samples_dir / "mpii")
    with pytest.warns(UserWarning, match=r"skipping: .*mpii.json: record 3: box of zero size"):
        ds = MPIIDataset(path, real_samples_dir / "mpii", skip_bad=True)
    assert len(ds) == 3


def test_cli_eval_on_a_flawed_file_is_one_line(coco: Path, tmp_path: Path) -> None:
    path = _alter(coco, lambda d: d["annotations"][1].update(id=d["annotations"][0]["id"]))
    cfg = {
        "model": {"name": "hg1", "kwargs": {"num_channels": 16, "depth": 2}},
        "data": {"format": "coco", "val": {"annotations": str(path), "images": str(coco)}, "num_workers": 0},
    }
    (tmp_path / "c.yaml").write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "hourglass", "eval", "--config", str(tmp_path / "c.yaml"), "--checkpoint", "x"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1
    assert "altered.json: annotations[1]: duplicate 'id'" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
