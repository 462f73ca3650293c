"""Leeds Sports Pose annotations (``joints.mat``, either release's layout) and the LSP dataset.

Two releases, one joint order (:data:`~hourglass.data.skeletons.LSP_14`), told apart by the array's shape:

* LSP-extended (Johnson and Everingham, CVPR 2011; 10,000 images): ``joints`` ``(14, 3, N)``, per joint
  ``x, y`` and a flag, 1 = labelled, 0 = not labelled (then ``x, y`` mean nothing). Record ``i`` (0-based) is
  ``im{i+1:05d}.jpg``. Left and right are the person's own.
* LSP (Johnson and Everingham, BMVC 2010; 2,000 images, the first 1,000 for training, the last 1,000 the test
  set): ``joints`` ``(3, 14, N)``, whose third row is 0 for a visible joint: every joint is labelled and a 1
  marks it occluded (the README only says "a binary value specifying joint visibility"; CPM's ``genJSON.m``
  turns it into LSPet's sense with ``1 - flag``, and the evaluation code LSP papers use scores all 14 joints).
  Record ``i`` is ``im{i+1:04d}.jpg``. Its left and right are observer-centric (as seen in the picture), unlike
  LSPet's; the LSP results papers report are on person-centric labels (the "PC" files of MPII's ``evalLSP``).

Coordinates are 1-based MATLAB pixels, as MPII's: 1 is subtracted, so keypoints are 0-based with pixel centres
at integers (the project's convention). A labelled joint may lie a little outside its image (LSPet has a few);
it is kept as labelled, and training gives it weight 0 when it falls outside the crop.

The crop of a person is the box of its labelled joints (at least 1 px on each side), widened to the network
input's aspect ratio and enlarged :data:`LSP_BOX_PADDING` times: the joints' extent stops at the ankles, wrists
and head top, LSP people are about 150 px tall, and the real LSPet model scores best near 1.5 (docs/DATA.md).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from hourglass.errors import DataError

from .codec import HeatmapCodec
from .dataset import KeypointDataset, Record
from .matfiles import read_arrays
from .skeletons import LSP_14
from .transforms import Augmentation, box_to_center_scale

LSP_BOX_PADDING = 1.5
"""How many times the box of a person's labelled joints (at the input's aspect ratio) the crop is."""

IMAGE_NAMES = {"lspet": "im{:05d}.jpg", "lsp": "im{:04d}.jpg"}
"""The image of record ``i`` is ``IMAGE_NAMES[layout].format(i + 1)``."""

Layout = Literal["lspet", "lsp"]


@dataclass(frozen=True)
class LSPJoints:
    """One ``joints.mat``, read into the project's convention.

    Attributes:
        keypoints: ``(N, 14, 2)`` 0-based pixels (the file's minus 1); unlabelled joints as the file has them.
        visible: ``(N, 14)`` bool, true where the joint is labelled.
        occluded: ``(N, 14)`` bool, labelled but marked occluded (the original LSP's flag; LSPet says nothing).
        layout: ``"lspet"`` (the ``(14, 3, N)`` file) or ``"lsp"`` (the ``(3, 14, N)`` one).
        path: the file.
    """

    keypoints: np.ndarray
    visible: np.ndarray
    occluded: np.ndarray
    layout: Layout
    path: Path

    def __len__(self) -> int:
        return len(self.keypoints)

    def image_name(self, index: int) -> str:
        """The image file of record ``index`` (0-based): ``im{index+1:05d}.jpg`` (LSPet) or ``im{index+1:04d}.jpg``."""
        return IMAGE_NAMES[self.layout].format(index + 1)


def read_lsp_joints(path: str | os.PathLike[str]) -> LSPJoints:
    """Read the ``joints`` array of an LSP or LSPet ``joints.mat`` (either layout; see the module docstring).

    Raises:
        FileNotFoundError: no such file.
        DataError: unreadable, no ``joints`` array, a shape of neither layout, non-numbers, or flags other than
            0 and 1; the message names the file, and the record and joint of the first bad flag.
    """
    path = Path(path)
    arrays = read_arrays(path, ("joints",), "LSP annotation")
    if "joints" not in arrays:
        raise DataError(f"{path}: no 'joints' array (an LSP joints.mat holds joints, (14, 3, N) or (3, 14, N))")
    joints = arrays["joints"]
    if joints.ndim == 2:  # MATLAB drops a trailing singleton axis: one record
        joints = joints[..., None]
    if joints.ndim == 3 and joints.shape[:2] == (14, 3):
        layout: Layout = "lspet"
        table = joints.transpose(2, 0, 1)  # (N, 14, 3)
    elif joints.ndim == 3 and joints.shape[:2] == (3, 14):
        layout = "lsp"
        table = joints.transpose(2, 1, 0)
    else:
        raise DataError(
            f"{path}: 'joints' has shape {joints.shape}, expected (14, 3, N) (LSP-extended: x, y, 1 = labelled) or "
            "(3, 14, N) (LSP: x, y, 0 = visible)"
        )
    if not np.issubdtype(table.dtype, np.number):
        raise DataError(f"{path}: 'joints' holds {table.dtype} values, expected numbers")
    table = table.astype(np.float64)
    flags = table[:, :, 2]
    bad = ~np.isin(flags, (0.0, 1.0))
    if bad.any():
        i, k = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(
            f"{path}: record {i}: joint {k} ({LSP_14.joint_names[k]}) has flag {flags[i, k]:g}, expected 0 or 1 "
            f"({int(bad.sum())} flag(s) of {flags.size} are neither)"
        )
    if layout == "lspet":
        visible, occluded = flags == 1, np.zeros(flags.shape, bool)
    else:
        visible, occluded = np.ones(flags.shape, bool), flags == 1
    return LSPJoints(table[:, :, :2] - 1.0, visible, occluded, layout, path)


class LSPDataset(KeypointDataset):
    """LSP or LSP-extended people (:data:`~hourglass.data.skeletons.LSP_14`) from a ``joints.mat``.

    Args:
        ann_file: the ``joints.mat`` (either layout).
        image_root: folder of its ``im*.jpg`` images; only needed to read samples. When given (and ``skip_bad``
            is false) every image of the chosen records must be there.
        codec: heatmap codec; default 256x256 input, 64x64 heatmaps, sigma 2.
        augmentation, seed, skip_bad: as in :class:`~hourglass.data.dataset.KeypointDataset`; with ``skip_bad`` a
            record without a box (no labelled joint, or all at one point) or with non-finite labelled
            coordinates is left out with a warning, else it is a :class:`DataError` naming file and record.
        holdout: the last ``holdout`` records of the file are held out (``data.holdout``): the dataset is the
            records before them, or with ``held_out`` the held-out ones themselves.
        padding: the crop as a multiple of the labelled joints' box (:data:`LSP_BOX_PADDING`).

    Example: the 9,000 LSPet records of ``../shared/data/lspet`` less the last 1,000, and those 1,000::

        train = LSPDataset("joints.mat", "images", holdout=1000)  # records 0-7999, im00001-im08000
        val = LSPDataset("joints.mat", "images", holdout=1000, held_out=True)  # records 8000-8999
    """

    def __init__(
        self,
        ann_file: str | os.PathLike[str],
        image_root: str | os.PathLike[str] | None = None,
        codec: HeatmapCodec | None = None,
        augmentation: Augmentation | None = None,
        seed: int = 0,
        skip_bad: bool = False,
        holdout: int = 0,
        held_out: bool = False,
        padding: float = LSP_BOX_PADDING,
    ) -> None:
        codec = codec or HeatmapCodec((256, 256), (64, 64), 2.0)
        joints = read_lsp_joints(ann_file)
        n = len(joints)
        if not 0 <= holdout < n:
            raise DataError(
                f"{ann_file}: holds {n} records, so holdout={holdout} (the last records held out of training) "
                f"must be in 0..{n - 1}"
            )
        chosen = range(n - holdout, n) if held_out else range(n - holdout)
        source = str(ann_file) if len(chosen) == n else f"{ann_file}[{chosen.start}:{chosen.stop}]"
        aspect = codec.input_size[1] / codec.input_size[0]
        records = []
        for i in chosen:
            try:
                records.append(_record(joints, i, aspect, padding))
            except DataError as err:
                if not skip_bad:
                    raise
                warnings.warn(f"skipping: {err}", stacklevel=2)
        if image_root is not None and not skip_bad:
            _check_images(joints, Path(image_root), [int(r.image_id) for r in records])
        super().__init__(records, LSP_14, codec, image_root, augmentation, seed, skip_bad, source)
        self.layout = joints.layout


def _record(joints: LSPJoints, i: int, aspect: float, padding: float) -> Record:
    """Record ``i`` of ``joints``: its labelled joints' box at ``aspect`` (W / H), ``padding`` times."""
    where = f"{joints.path}: record {i} ({joints.image_name(i)})"
    labelled = joints.visible[i]
    points = joints.keypoints[i][labelled]
    if not np.isfinite(points).all():
        raise DataError(f"{where}: labelled joints have NaN or infinite coordinates")
    if len(points) == 0:
        raise DataError(f"{where}: no labelled joint, so no person box (expected at least one joint flagged labelled)")
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    w, h = x1 - x0, y1 - y0
    if w <= 0 and h <= 0:
        raise DataError(f"{where}: the labelled joints all lie at ({x0 + 1:g}, {y0 + 1:g}), so they span no box")
    center, scale = box_to_center_scale((x0, y0, max(w, 1.0), max(h, 1.0)), aspect, padding)
    return Record(
        image_file=joints.image_name(i),
        center=center,
        scale=scale,
        keypoints=joints.keypoints[i],
        visible=labelled,
        occluded=joints.occluded[i],
        bbox=np.array([x0, y0, w, h]),
        image_id=i,
    )


def _check_images(joints: LSPJoints, root: Path, indices: list[int]) -> None:
    """Refuse a folder that lacks the image of any of ``indices``, naming the first and how many."""
    if not root.is_dir():
        raise DataError(f"{joints.path}: image folder {root} does not exist")
    missing = [i for i in indices if not (root / joints.image_name(i)).is_file()]
    if missing:
        i = missing[0]
        pattern = IMAGE_NAMES[joints.layout].replace("{:", "%").replace("}", "")
        raise DataError(
            f"{joints.path}: record {i}: image {root / joints.image_name(i)} is missing ({len(missing)} of "
            f"{len(indices)} images missing; record i of a {joints.layout} file is {pattern} of i + 1)"
        )
