"""MPII Human Pose annotations in the two formats in use, and the MPII dataset.

* JSON of the HRNet / mmpose family: a list of ``{"image", "center", "scale", "joints" (16, 2),
  "joints_vis" (16,)}`` in 1-based MATLAB pixel coordinates, ``center``/``scale`` straight from MPII's
  ``objpos``/``scale``. As in HRNet's ``mpii.py`` we apply ``c_y += 15 * s; s *= 1.25`` (unless
  ``c_x == -1``) and subtract 1 from ``center`` and ``joints``. Optional fields written by
  ``hourglass synth``: ``headbox`` (x1, y1, x2, y2, 1-based), ``joints_occluded`` (16,), ``image_id``.
* ``.h5`` of the original Torch code (and princeton-vl/pytorch_stacked_hourglass): ``center`` (N, 2),
  ``scale`` (N,), ``part`` (N, 16, 2), ``visible`` (N, 16), ``normalize`` (N,), ``imgname`` (N,).
  ``center``/``scale`` already include the adjustment above, which is therefore not applied again;
  coordinates are 1-based like the JSON ones and get the same ``- 1``. A joint is labelled where
  ``part != (0, 0)`` (this matches ``jnt_missing`` of the official ``gt_valid.mat`` for all 47,328 joints
  of ``valid.h5``); ``visible`` is MPII's visibility flag, so a labelled joint with ``visible == 0`` is
  occluded. ``normalize`` is the head size, 0.6 x the head-box diagonal (checked against the official
  ``headboxes_src``: equal within 1e-4 px).

Both load without touching images, for evaluation-only use (``dataset.annotations()``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hourglass.errors import DataError
from hourglass.metrics.mpii import mpii_head_size

from .codec import HeatmapCodec
from .dataset import KeypointDataset, Record
from .skeletons import MPII_16
from .transforms import Augmentation

JSON_FIELDS = ("image", "center", "scale", "joints", "joints_vis")
H5_FIELDS = ("center", "scale", "part", "visible", "normalize", "imgname")


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: no such annotation file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


def load_mpii_json(path: str | os.PathLike[str]) -> list[Record]:
    """Records of an HRNet-style MPII JSON file (see the module docstring for the conventions)."""
    path = Path(path)
    doc = _read_json(path)
    if not isinstance(doc, list):
        raise DataError(f"{path}: expected a JSON list of people with fields {', '.join(JSON_FIELDS)}")
    records = []
    for i, entry in enumerate(doc):
        where = f"{path}: record {i}"
        if not isinstance(entry, Mapping):
            raise DataError(f"{where}: expected an object with fields {', '.join(JSON_FIELDS)}")
        missing = [k for k in JSON_FIELDS if k not in entry]
        if missing:
            raise DataError(
                f"{where}: missing field {', '.join(map(repr, missing))} (expected {', '.join(JSON_FIELDS)})"
            )
        try:
            center = np.asarray(entry["center"], dtype=np.float64).reshape(2)
            scale = float(entry["scale"])
            joints = np.asarray(entry["joints"], dtype=np.float64)
            vis = np.asarray(entry["joints_vis"], dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as err:
            raise DataError(f"{where}: center must be (x, y), scale a number, joints (K, 2) numbers ({err})") from None
        if joints.shape != (MPII_16.num_joints, 2):
            raise DataError(f"{where}: joints have shape {joints.shape}, expected (16, 2)")
        if center[0] != -1:
            center[1] += 15 * scale
            scale *= 1.25
        head_size = 0.0
        if "headbox" in entry:
            head_size = mpii_head_size(np.asarray(entry["headbox"], dtype=np.float64).reshape(4))
        occluded = np.asarray(entry.get("joints_occluded", []), dtype=np.float64).reshape(-1)
        records.append(
            Record(
                image_file=str(entry["image"]),
                center=center - 1,
                scale=np.array([scale, scale]),
                keypoints=joints - 1,
                visible=vis,
                occluded=occluded,
                head_size=head_size,
                image_id=entry.get("image_id", str(entry["image"])),
            )
        )
    return records


def load_mpii_h5(path: str | os.PathLike[str]) -> list[Record]:
    """Records of a Torch-style MPII ``.h5`` file (``center``/``scale`` already adjusted; never adjusted twice)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such annotation file")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in H5_FIELDS if k not in f]
            if missing:
                raise DataError(
                    f"{path}: missing dataset {', '.join(map(repr, missing))} (expected {', '.join(H5_FIELDS)})"
                )
            data = {k: f[k][()] for k in H5_FIELDS}
            index = f["index"][()] if "index" in f else None
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from None
    n = len(data["imgname"])
    expect = {"center": (n, 2), "scale": (n,), "part": (n, 16, 2), "visible": (n, 16), "normalize": (n,)}
    for key, shape in expect.items():
        if data[key].shape != shape:
            raise DataError(f"{path}: dataset {key!r} has shape {data[key].shape}, expected {shape} for {n} people")
    part = data["part"].astype(np.float64)
    labelled = ~(part == 0).all(-1)
    occluded = labelled & (data["visible"] == 0)
    names = [x.decode() if isinstance(x, bytes) else str(x) for x in data["imgname"]]
    return [
        Record(
            image_file=names[i],
            center=data["center"][i].astype(np.float64) - 1,
            scale=np.full(2, float(data["scale"][i])),
            keypoints=part[i] - 1,
            visible=labelled[i],
            occluded=occluded[i],
            head_size=float(data["normalize"][i]),
            image_id=int(index[i]) if index is not None else names[i],
        )
        for i in range(n)
    ]


def load_mpii(path: str | os.PathLike[str]) -> list[Record]:
    """Records of an MPII annotation file, ``.json`` (HRNet) or ``.h5`` (Torch), chosen by suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return load_mpii_json(path)
    if suffix in (".h5", ".hdf5"):
        return load_mpii_h5(path)
    raise DataError(f"{path}: unknown MPII annotation format; expected a .json (HRNet) or .h5 (Torch) file")


class MPIIDataset(KeypointDataset):
    """MPII Human Pose (MPII_16 joints) from a ``.json`` or ``.h5`` annotation file.

    Args:
        ann_file: annotation file (format chosen by suffix).
        image_root: folder of the images (``images/`` of MPII); only needed to read samples.
        codec: heatmap codec; default 256x256 input, 64x64 heatmaps, sigma 2.
        augmentation, seed, skip_bad: as in :class:`KeypointDataset`.
    """

    def __init__(
        self,
        ann_file: str | os.PathLike[str],
        image_root: str | os.PathLike[str] | None = None,
        codec: HeatmapCodec | None = None,
        augmentation: Augmentation | None = None,
        seed: int = 0,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(
            load_mpii(ann_file),
            MPII_16,
            codec or HeatmapCodec((256, 256), (64, 64), 2.0),
            image_root,
            augmentation,
            seed,
            skip_bad,
            str(ann_file),
        )
