"""Joint metadata as data: names, flip partners, drawing edges and colours, OKS sigmas where defined.

A :class:`Skeleton` is plain data shared by datasets (flip augmentation swaps ``flip_index`` partners),
the codec's flip helpers, evaluation (OKS ``sigmas``) and drawing (``edges``, ``colours``). Custom
keypoint sets (animals, hands, faces) come from a COCO ``categories`` entry through
:meth:`Skeleton.from_coco_category`; the flip partners are inferred from ``left``/``right`` in the names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hourglass.errors import DataError

RGB = tuple[int, int, int]

_LEFT = (230, 120, 30)  # orange
_RIGHT = (40, 120, 230)  # blue
_CENTRE = (60, 190, 90)  # green


@dataclass(frozen=True)
class Skeleton:
    """Metadata of one keypoint set.

    Attributes:
        name: short identifier (``"mpii_16"``, ``"coco_17"`` or the COCO category name).
        joint_names: K names, in the order of the annotation and of the heatmap channels.
        flip_index: K indices; joint ``k`` becomes joint ``flip_index[k]`` in a horizontally mirrored image.
        edges: pairs of joint indices drawn as limbs.
        colours: one RGB colour per edge (left side orange, right side blue, centre green).
        sigmas: K OKS sigmas (COCO keypoint evaluation) or ``None`` where the dataset defines none.
    """

    name: str
    joint_names: tuple[str, ...]
    flip_index: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    colours: tuple[RGB, ...]
    sigmas: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        k = len(self.joint_names)
        if sorted(self.flip_index) != list(range(k)) or any(self.flip_index[self.flip_index[i]] != i for i in range(k)):
            raise DataError(f"skeleton {self.name!r}: flip_index must be an involutive permutation of 0..{k - 1}")
        if any(not (0 <= a < k and 0 <= b < k) for a, b in self.edges):
            raise DataError(f"skeleton {self.name!r}: edges must index joints 0..{k - 1}")
        if len(self.colours) != len(self.edges):
            raise DataError(f"skeleton {self.name!r}: {len(self.edges)} edges but {len(self.colours)} colours")
        if self.sigmas is not None and len(self.sigmas) != k:
            raise DataError(f"skeleton {self.name!r}: {k} joints but {len(self.sigmas)} sigmas")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, joint_name: str) -> int:
        """Position of ``joint_name`` in :attr:`joint_names`."""
        try:
            return self.joint_names.index(joint_name)
        except ValueError:
            raise DataError(f"skeleton {self.name!r} has no joint {joint_name!r}") from None

    @classmethod
    def from_coco_category(cls, category: Mapping[str, Any]) -> Skeleton:
        """A skeleton from a COCO ``categories`` entry (``name``, ``keypoints``, ``skeleton`` 1-based pairs).

        Flip partners are inferred from the names (``left_x``/``right_x``, ``l_x``/``r_x``, ``x_left`` ...);
        an optional ``flip_index`` list in the entry overrides that. OKS sigmas come from an optional
        ``sigmas`` list, or from :data:`COCO_17` when the names are exactly COCO's.
        """
        name = str(category.get("name", "custom"))
        if "keypoints" not in category:
            raise DataError(f"COCO category {name!r}: no 'keypoints' list of joint names")
        names = tuple(str(n) for n in category["keypoints"])
        k = len(names)
        try:
            edges = tuple((int(a) - 1, int(b) - 1) for a, b in category.get("skeleton", []))
        except (TypeError, ValueError):
            raise DataError(f"COCO category {name!r}: 'skeleton' must be a list of 1-based joint pairs") from None
        flip = tuple(int(i) for i in category["flip_index"]) if "flip_index" in category else infer_flip_index(names)
        sigmas: tuple[float, ...] | None = None
        if "sigmas" in category:
            sigmas = tuple(float(s) for s in category["sigmas"])
        elif names == COCO_17.joint_names:
            sigmas = COCO_17.sigmas
        if len(flip) != k:
            raise DataError(f"COCO category {name!r}: {k} keypoints but {len(flip)} flip_index entries")
        return cls(name, names, flip, edges, _edge_colours(names, edges), sigmas)

    def to_coco_category(self, category_id: int = 1, name: str = "person") -> dict[str, Any]:
        """The COCO ``categories`` entry for this skeleton (1-based ``skeleton`` pairs, plus ``flip_index``)."""
        entry: dict[str, Any] = {
            "id": category_id,
            "name": name,
            "supercategory": name,
            "keypoints": list(self.joint_names),
            "skeleton": [[a + 1, b + 1] for a, b in self.edges],
            "flip_index": list(self.flip_index),
        }
        if self.sigmas is not None:
            entry["sigmas"] = list(self.sigmas)
        return entry


def _side(name: str) -> tuple[str, str] | None:
    """``(side, name without the side word)`` for ``left_x``, ``x_left``, ``l_x``, ``leftX`` ...; else ``None``."""
    n = name.lower()
    tokens = [t for t in re.split(r"[_\-. ]+", n) if t]
    words = {"left": "left", "l": "left", "right": "right", "r": "right"}
    if len(tokens) > 1:
        if tokens[0] in words:
            return words[tokens[0]], "_".join(tokens[1:])
        if tokens[-1] in words:
            return words[tokens[-1]], "_".join(tokens[:-1])
    for side in ("left", "right"):
        if n.startswith(side) and len(n) > len(side):
            return side, n[len(side) :]
        if n.endswith(side) and len(n) > len(side):
            return side, n[: -len(side)]
    return None


def infer_flip_index(names: Sequence[str]) -> tuple[int, ...]:
    """Flip partners from ``left``/``right`` (or ``l``/``r`` with a separator) in joint names.

    Joints without a side, or whose partner is missing, map to themselves.
    """
    keyed = {}
    for i, n in enumerate(names):
        s = _side(n)
        if s is not None:
            keyed[s] = i
    flip = list(range(len(names)))
    for (side, key), i in keyed.items():
        other = keyed.get(("right" if side == "left" else "left", key))
        if other is not None:
            flip[i] = other
    return tuple(flip)


def _edge_colours(names: Sequence[str], edges: Sequence[tuple[int, int]]) -> tuple[RGB, ...]:
    def side(i: int) -> str | None:
        s = _side(names[i])
        return s[0] if s else None

    out = []
    for a, b in edges:
        sa, sb = side(a), side(b)
        out.append(
            _LEFT
            if "left" in (sa, sb) and "right" not in (sa, sb)
            else _RIGHT
            if "right" in (sa, sb) and "left" not in (sa, sb)
            else _CENTRE
        )
    return tuple(out)


def _make(
    name: str, names: Sequence[str], edges: Sequence[tuple[int, int]], sigmas: Sequence[float] | None
) -> Skeleton:
    names = tuple(names)
    return Skeleton(
        name,
        names,
        infer_flip_index(names),
        tuple(edges),
        _edge_colours(names, edges),
        None if sigmas is None else tuple(sigmas),
    )


MPII_FILE_JOINTS = ("rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor",
                    "neck", "head", "rwri", "relb", "rsho", "lsho", "lelb", "lwri")  # fmt: skip
"""``dataset_joints`` of the official ``gt_valid.mat``: MPII_16's order under MPII's short names."""

MPII_16 = _make(
    "mpii_16",
    (
        "r_ankle",
        "r_knee",
        "r_hip",
        "l_hip",
        "l_knee",
        "l_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "r_wrist",
        "r_elbow",
        "r_shoulder",
        "l_shoulder",
        "l_elbow",
        "l_wrist",
    ),
    (
        (0, 1),
        (1, 2),
        (2, 6),
        (6, 3),
        (3, 4),
        (4, 5),
        (6, 7),
        (7, 8),
        (8, 9),
        (10, 11),
        (11, 12),
        (12, 7),
        (7, 13),
        (13, 14),
        (14, 15),
    ),
    None,
)
"""The 16 MPII Human Pose joints in the dataset's order. MPII's protocol (PCKh) defines no OKS sigmas."""

COCO_17 = _make(
    "coco_17",
    (
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    (
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ),
    (
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ),
)
"""The 17 COCO person keypoints with the official OKS sigmas (cocoapi ``COCOeval``)."""

_BY_NAME = {"mpii": MPII_16, "mpii_16": MPII_16, "coco": COCO_17, "coco_17": COCO_17}


def get_skeleton(spec: str | Mapping[str, Any] | Skeleton) -> Skeleton:
    """A skeleton from a name (``"mpii"``, ``"mpii_16"``, ``"coco"``, ``"coco_17"``) or a COCO category dict.

    This is how checkpoint metadata (``meta["data"]["skeleton"]``, a name or a category dict) is read back.
    """
    if isinstance(spec, Skeleton):
        return spec
    if isinstance(spec, Mapping):
        return Skeleton.from_coco_category(spec)
    try:
        return _BY_NAME[str(spec).lower()]
    except KeyError:
        raise DataError(f"unknown skeleton {spec!r}; expected one of {sorted(_BY_NAME)} or a COCO category") from None


def skeleton_spec(skeleton: Skeleton) -> str | dict[str, Any]:
    """What to store in checkpoint metadata for ``skeleton``: its name if built in, else its COCO category."""
    if _BY_NAME.get(skeleton.name) == skeleton:
        return skeleton.name
    return skeleton.to_coco_category(name=skeleton.name)
