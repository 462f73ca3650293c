"""Joint metadata as data: names, flip partners, drawing edges and colours, OKS sigmas where defined.

A :class:`Skeleton` is plain data shared by datasets (flip augmentation swaps ``flip_index`` partners),
the codec's flip helpers, evaluation (OKS ``sigmas``) and drawing (``edges``, ``colours``).

Known sets (:data:`KNOWN_SKELETONS`): MPII (16), COCO (17; OCHuman uses the same set), CrowdPose (14),
AI Challenger (14), LSP (14), Halpe full body (136) and its 26-joint body-and-feet part. Orders, flip pairs and edges
follow the datasets' own files (as mmpose's ``configs/_base_/datasets`` restates them); OKS sigmas are the
ones the datasets' official evaluation code uses (cocoapi, crowdposetools, AI Challenger's
``keypoint_eval.py``, halpecocotools). A COCO-format category whose joint names are one of these sets
(compared after normalising case, separators, ``l_``/``left_`` and head/neck spellings) gets that set,
so it is scored with its OKS sigmas (:func:`recognise_skeleton`).

Custom keypoint sets (animals, hands, faces) come from a COCO ``categories`` entry through
:meth:`Skeleton.from_coco_category`; the flip partners are inferred from ``left``/``right`` in the names.
Colours: limbs on the left side orange, on the right blue, in the middle green (joints take the colour of
their first limb when drawn).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
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
    def from_coco_category(cls, category: Mapping[str, Any], source: str = "COCO category") -> Skeleton:
        """A skeleton from a COCO ``categories`` entry (``name``, ``keypoints``, ``skeleton`` 1-based pairs).

        Flip partners are inferred from the names (``left_x``/``right_x``, ``l_x``/``r_x``, ``x_left`` ...);
        an optional ``flip_index`` list in the entry overrides that. OKS sigmas come from an optional
        ``sigmas`` list, or from the known set (:data:`KNOWN_SKELETONS`) whose joint names these are.
        ``skeleton`` entries that are not pairs of joints of this category only affect drawing: they are
        dropped with a warning naming ``source`` and the entry.
        """
        name = str(category.get("name", "custom"))
        where = f"{source}: category {name!r}"
        if "keypoints" not in category:
            raise DataError(f"{where}: no 'keypoints' list of joint names")
        names = tuple(str(n) for n in category["keypoints"])
        k = len(names)
        edges = _edge_entries(category.get("skeleton", []), k, where)
        try:
            flip = tuple(int(i) for i in category["flip_index"]) if "flip_index" in category else None
        except (TypeError, ValueError):
            raise DataError(f"{where}: 'flip_index' must be a list of joint indices") from None
        flip = flip if flip is not None else infer_flip_index(names)
        if len(flip) != k:
            raise DataError(f"{where}: {k} keypoints but {len(flip)} flip_index entries")
        sigmas: tuple[float, ...] | None = None
        if "sigmas" in category:
            try:
                sigmas = tuple(float(s) for s in category["sigmas"])
            except (TypeError, ValueError):
                raise DataError(f"{where}: 'sigmas' must be a list of numbers") from None
        else:
            known = _known_by_names(names)
            sigmas = known.sigmas if known is not None else None
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


def _edge_entries(entries: Any, k: int, where: str) -> tuple[tuple[int, int], ...]:
    """1-based COCO ``skeleton`` pairs as 0-based edges; entries that are not two joints of ``k`` are
    dropped with one warning (they only affect drawing)."""
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        warnings.warn(f"{where}: 'skeleton' is not a list of joint pairs; no limbs will be drawn", stacklevel=3)
        return ()
    edges, bad = [], []
    for entry in entries:
        try:
            a, b = (int(v) - 1 for v in entry)
        except (TypeError, ValueError):
            bad.append(entry)
            continue
        if 0 <= a < k and 0 <= b < k:
            edges.append((a, b))
        else:
            bad.append(entry)
    if bad:
        warnings.warn(
            f"{where}: 'skeleton' entries {bad[:5]}{' ...' if len(bad) > 5 else ''} name joints the category does "
            f"not have (expected 1-based pairs in 1..{k}); dropped, they only affect drawing",
            stacklevel=3,
        )
    return tuple(edges)


def _make(
    name: str,
    names: Sequence[str],
    edges: Sequence[tuple[int, int]] | Sequence[tuple[str, str]],
    sigmas: Sequence[float] | None,
    flip_pairs: Sequence[tuple[int, int]] | None = None,
) -> Skeleton:
    """A known set; ``edges`` as index pairs or name pairs; flip partners from the names unless given."""
    names = tuple(names)
    pairs = tuple((names.index(a), names.index(b)) if isinstance(a, str) else (a, b) for a, b in edges)  # type: ignore[arg-type]
    if flip_pairs is None:
        flip = infer_flip_index(names)
    else:
        flip_list = list(range(len(names)))
        for a, b in flip_pairs:
            flip_list[a], flip_list[b] = b, a
        flip = tuple(flip_list)
    return Skeleton(name, names, flip, pairs, _edge_colours(names, pairs), None if sigmas is None else tuple(sigmas))


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

CROWDPOSE_14 = _make(
    "crowdpose_14",
    ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
     "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head_top", "neck"),
    (("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
     ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
     ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"),
     ("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"),
     ("head_top", "neck"), ("right_shoulder", "neck"), ("left_shoulder", "neck")),
    (0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079),
)  # fmt: skip
"""CrowdPose (Li et al., CVPR 2019); sigmas of ``crowdposetools/cocoeval.py``. Its files call joint 12 ``head``."""

AIC_14 = _make(
    "aic_14",
    ("right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist", "right_hip",
     "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "head_top", "neck"),
    (("right_wrist", "right_elbow"), ("right_elbow", "right_shoulder"), ("right_shoulder", "neck"),
     ("neck", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
     ("right_ankle", "right_knee"), ("right_knee", "right_hip"), ("right_hip", "left_hip"),
     ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("head_top", "neck"),
     ("right_shoulder", "right_hip"), ("left_shoulder", "left_hip")),
    (0.01388152, 0.01515228, 0.01057665, 0.01417709, 0.01497891, 0.01402144, 0.03909642, 0.03686941,
     0.01981803, 0.03843971, 0.03412318, 0.02415081, 0.01291456, 0.01236173),
)  # fmt: skip
"""AI Challenger keypoints (Wu et al. 2017); sigmas are half the ``delta`` of its official ``keypoint_eval.py``."""

LSP_14 = _make(
    "lsp_14",
    ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist", "right_elbow",
     "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "neck", "head_top"),
    (("right_ankle", "right_knee"), ("right_knee", "right_hip"), ("left_hip", "left_knee"),
     ("left_knee", "left_ankle"), ("right_wrist", "right_elbow"), ("right_elbow", "right_shoulder"),
     ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "neck"),
     ("left_shoulder", "neck"), ("neck", "head_top"), ("right_hip", "right_shoulder"),
     ("left_hip", "left_shoulder"), ("right_hip", "left_hip")),
    None,
)  # fmt: skip
"""Leeds Sports Pose (Johnson and Everingham, BMVC 2010) and LSP-extended (CVPR 2011): 14 joints in the order of
their ``joints.mat`` (the releases' README). No OKS sigmas: LSP is scored with PCK@0.2 of the torso."""

_HALPE_BODY = (
    *COCO_17.joint_names, "head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe",
    "right_small_toe", "left_heel", "right_heel",
)  # fmt: skip
_HALPE_BODY_EDGES = (
    ("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("left_hip", "hip"), ("right_ankle", "right_knee"),
    ("right_knee", "right_hip"), ("right_hip", "hip"), ("head", "neck"), ("neck", "hip"), ("neck", "left_shoulder"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("neck", "right_shoulder"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("left_eye", "right_eye"),
    ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
    ("left_ear", "left_shoulder"), ("right_ear", "right_shoulder"), ("left_ankle", "left_big_toe"),
    ("left_ankle", "left_small_toe"), ("left_ankle", "left_heel"), ("right_ankle", "right_big_toe"),
    ("right_ankle", "right_small_toe"), ("right_ankle", "right_heel"),
)  # fmt: skip
_HALPE_SIGMAS = (*COCO_17.sigmas, 0.08, 0.08, 0.08, *(0.089,) * 6, *(0.015,) * 110)  # type: ignore[misc]
_FINGERS = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")
_HAND = ("wrist", *(f"{f}{i}" for f in _FINGERS for i in range(1, 5)))  # 21 points, wrist first
# The 68 face points (iBUG 300-W order) and their mirror partners, as Halpe's files list them.
_FACE_FLIP = (
    *((i, 16 - i) for i in range(8)), *((17 + i, 26 - i) for i in range(5)), (31, 35), (32, 34),
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46), (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),
    (60, 64), (61, 63), (65, 67),
)  # fmt: skip

HALPE_26 = _make("halpe_26", _HALPE_BODY, _HALPE_BODY_EDGES, _HALPE_SIGMAS[:26])
"""Halpe's body and feet (26 joints: COCO's 17, head, neck, hip, toes, heels), the part most models train on.

Sigmas: those halpecocotools scores these joints with in the 136-point set (mmpose's ``halpe26.py`` uses
0.026, 0.026, 0.066 for head, neck, hip and 0.079 for the feet instead)."""


def _halpe_136() -> Skeleton:
    names = (*_HALPE_BODY, *(f"face-{i}" for i in range(68)), *(f"left_{h}" for h in _HAND),
             *(f"right_{h}" for h in _HAND))  # fmt: skip
    hand_edges = []
    for side in ("left", "right"):
        base = names.index(f"{side}_wrist", 26)  # the hand's own wrist point, not the body's
        for f in range(5):
            chain = [base, *(base + 1 + 4 * f + i for i in range(4))]
            hand_edges += list(pairwise(chain))
    body_edges = [(names.index(a), names.index(b)) for a, b in _HALPE_BODY_EDGES]
    flips = [(a, b) for a, b in enumerate(HALPE_26.flip_index) if a < b]
    flips += [(26 + a, 26 + b) for a, b in _FACE_FLIP] + [(94 + i, 115 + i) for i in range(21)]
    return _make("halpe_136", names, [*body_edges, *hand_edges], _HALPE_SIGMAS, flips)


HALPE_136 = _halpe_136()
"""Halpe full body (Li et al., CVPR 2020): 26 body and feet joints, 68 face points, 21 per hand (each hand
repeats its wrist); sigmas of halpecocotools' ``cocoeval.py``. Flip partners are listed, not inferred (the
face points have no side in their names)."""

KNOWN_SKELETONS: tuple[Skeleton, ...] = (MPII_16, COCO_17, CROWDPOSE_14, AIC_14, LSP_14, HALPE_26, HALPE_136)
"""Every built-in keypoint set; :func:`recognise_skeleton` matches a COCO category against them."""

_BY_NAME = {
    **{s.name: s for s in KNOWN_SKELETONS},
    **{"mpii": MPII_16, "coco": COCO_17, "ochuman": COCO_17, "crowdpose": CROWDPOSE_14, "aic": AIC_14,
       "lsp": LSP_14, "halpe": HALPE_136, "halpe26": HALPE_26},
}  # fmt: skip
_SYNONYMS = {"top_head": "head_top", "head": "head_top", "upper_neck": "neck"}


def canonical_joint_name(name: str) -> str:
    """A joint name compared across files and skeletons: lower case, ``_`` separators, ``left_``/``right_``
    prefixes, head and neck spellings unified (``top_head``/``head`` -> ``head_top``, ``upper_neck`` -> ``neck``).

    Example:
        >>> [canonical_joint_name(n) for n in ("l knee", "L_Knee", "left_knee", "upper_neck", "r ankle")]
        ['left_knee', 'left_knee', 'left_knee', 'neck', 'right_ankle']
    """
    side = _side(name)
    rest = side[1] if side else "_".join(t for t in re.split(r"[_\-. ]+", name.lower()) if t)
    rest = _SYNONYMS.get(rest, rest)
    return f"{side[0]}_{rest}" if side else rest


def _known_by_names(names: Sequence[str]) -> Skeleton | None:
    wanted = tuple(canonical_joint_name(n) for n in names)
    for known in KNOWN_SKELETONS:
        if (
            len(known.joint_names) == len(wanted)
            and tuple(canonical_joint_name(n) for n in known.joint_names) == wanted
        ):
            return known
    return None


def recognise_skeleton(category: Mapping[str, Any], source: str = "COCO category") -> Skeleton:
    """The built-in set whose joints a COCO ``categories`` entry lists (same order), else a custom skeleton.

    A recognised set brings its own edges, flip pairs and OKS sigmas, so the file is scored with OKS AP;
    a custom one is :meth:`Skeleton.from_coco_category`, as is a known one whose entry gives other
    ``flip_index`` or ``sigmas`` (the file's own values win).
    """
    if "keypoints" not in category:
        raise DataError(f"{source}: category {category.get('name', 'custom')!r}: no 'keypoints' list of joint names")
    known = _known_by_names([str(n) for n in category["keypoints"]])
    if known is None:
        return Skeleton.from_coco_category(category, source)
    where = f"{source}: category {category.get('name', 'custom')!r}"
    _edge_entries(category.get("skeleton", []), known.num_joints, where)  # warns about entries naming no joint
    own = Skeleton.from_coco_category({**category, "skeleton": []}, source)  # its own flip_index / sigmas, if any
    agrees = ("flip_index" not in category or own.flip_index == known.flip_index) and (
        "sigmas" not in category or own.sigmas == known.sigmas
    )
    return known if agrees else Skeleton.from_coco_category(category, source)


def get_skeleton(spec: str | Mapping[str, Any] | Skeleton) -> Skeleton:
    """A skeleton from a name (``"mpii"``, ``"coco"``, ``"crowdpose"``, ``"aic"``, ``"lsp"``, ``"halpe"``,
    ``"halpe26"``, ``"ochuman"`` or a set's own name such as ``"coco_17"``) or a COCO category dict.

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
