"""Skeletons: the MPII and COCO joint sets, custom sets from COCO categories, lookup by name."""

from __future__ import annotations

import pytest

from hourglass.data import COCO_17, MPII_16, DataError, Skeleton, get_skeleton, skeleton_spec


def test_mpii_order_and_flip_pairs_match_the_dataset() -> None:
    assert MPII_16.joint_names == (
        "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax", "upper_neck", "head_top",
        "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
    )  # fmt: skip
    pairs = {(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)}
    for a, b in pairs:
        assert MPII_16.flip_index[a] == b and MPII_16.flip_index[b] == a
    assert [MPII_16.flip_index[k] for k in (6, 7, 8, 9)] == [6, 7, 8, 9]
    assert MPII_16.sigmas is None
    assert len(MPII_16.colours) == len(MPII_16.edges) == 15


def test_coco_flip_pairs_and_sigmas() -> None:
    assert COCO_17.flip_index == (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
    assert COCO_17.sigmas is not None and COCO_17.sigmas[0] == 0.026 and COCO_17.sigmas[11] == 0.107
    assert COCO_17.index("left_wrist") == 9


def test_custom_category_infers_flip_partners_from_names() -> None:
    category = {
        "name": "quadruped",
        "keypoints": ["nose", "L_Eye", "R_Eye", "left_front_paw", "right_front_paw", "tail", "earLeft", "earRight"],
        "skeleton": [[1, 2], [1, 3], [4, 6], [5, 6]],
    }
    sk = Skeleton.from_coco_category(category)
    assert sk.flip_index == (0, 2, 1, 4, 3, 5, 7, 6)
    assert sk.edges == ((0, 1), (0, 2), (3, 5), (4, 5))
    assert sk.sigmas is None
    back = Skeleton.from_coco_category(sk.to_coco_category(name="quadruped"))
    assert back == sk


def test_coco_category_gets_official_sigmas() -> None:
    sk = Skeleton.from_coco_category(COCO_17.to_coco_category())
    assert sk.sigmas == COCO_17.sigmas and sk.flip_index == COCO_17.flip_index


def test_get_skeleton_by_name_dict_and_spec_round_trip() -> None:
    assert get_skeleton("mpii") is MPII_16 and get_skeleton("COCO_17") is COCO_17
    assert skeleton_spec(MPII_16) == "mpii_16"
    custom = Skeleton.from_coco_category({"name": "hand", "keypoints": ["wrist", "thumb", "index"]})
    assert get_skeleton(skeleton_spec(custom)) == custom
    with pytest.raises(DataError, match="unknown skeleton 'h36m'"):
        get_skeleton("h36m")


def test_bad_skeletons_are_refused() -> None:
    with pytest.raises(DataError, match="flip_index"):
        Skeleton("bad", ("a", "b"), (1, 1), (), ())
    with pytest.raises(DataError, match="edges"):
        Skeleton("bad", ("a", "b"), (0, 1), ((0, 2),), ((0, 0, 0),))
    with pytest.raises(DataError, match="keypoints"):
        Skeleton.from_coco_category({"name": "nothing"})
