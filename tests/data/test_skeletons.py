"""Skeletons: the MPII and COCO joint sets, custom sets from COCO categories, lookup by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from hourglass.data import (
    AIC_14,
    COCO_17,
    CROWDPOSE_14,
    HALPE_26,
    HALPE_136,
    KNOWN_SKELETONS,
    LSP_14,
    MPII_16,
    DataError,
    Skeleton,
    get_skeleton,
    recognise_skeleton,
    skeleton_spec,
)


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


# Known sets: the published tables restated independently of the module (mmpose configs/_base_/datasets and the
# datasets' evaluation code), checked against the data.
PUBLISHED_SIGMAS = {
    "crowdpose_14": [0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89, 0.79, 0.79],  # x 10
    "aic_14": [0.01388152, 0.01515228, 0.01057665, 0.01417709, 0.01497891, 0.01402144, 0.03909642, 0.03686941,
               0.01981803, 0.03843971, 0.03412318, 0.02415081, 0.01291456, 0.01236173],
}  # fmt: skip


@pytest.mark.parametrize("skeleton", KNOWN_SKELETONS, ids=lambda s: s.name)
def test_known_sets_are_consistent(skeleton: Skeleton) -> None:
    """Left joints flip to the right joint of the same name, centre joints to themselves; every joint is drawn
    (hands and face aside, which Halpe draws without face lines); sigmas, where published, one per joint."""
    names = skeleton.joint_names
    for i, j in enumerate(skeleton.flip_index):
        if names[i].startswith(("left_", "l_")):
            assert names[j].replace("right", "left").replace("r_", "l_", 1) == names[i], (names[i], names[j])
        elif not names[i].startswith(("right_", "r_", "face-")):
            assert i == j, names[i]
    drawn = {j for e in skeleton.edges for j in e}
    body = [i for i, n in enumerate(names) if not n.startswith("face-")]
    assert set(body) <= drawn
    assert len(set(skeleton.edges)) == len(skeleton.edges)
    assert skeleton.sigmas is None or len(skeleton.sigmas) == skeleton.num_joints
    assert get_skeleton(skeleton_spec(skeleton)) is skeleton


def test_published_sigmas_and_sizes() -> None:
    assert [round(10 * s, 6) for s in CROWDPOSE_14.sigmas] == PUBLISHED_SIGMAS["crowdpose_14"]
    assert list(AIC_14.sigmas) == PUBLISHED_SIGMAS["aic_14"]
    assert HALPE_136.num_joints == 136 and len(HALPE_136.edges) == 67  # halpe.py's 67 links
    assert HALPE_136.sigmas[:17] == COCO_17.sigmas and set(HALPE_136.sigmas[26:]) == {0.015}
    assert HALPE_26.joint_names == HALPE_136.joint_names[:26] and HALPE_26.sigmas == HALPE_136.sigmas[:26]
    # Halpe's face: point 0 <-> 16 (jaw), 8 (chin) stays; each hand's wrist point swaps with the other hand's
    face = HALPE_136.joint_names.index("face-0")
    assert HALPE_136.flip_index[face] == face + 16 and HALPE_136.flip_index[face + 8] == face + 8
    assert HALPE_136.flip_index[94] == 115 and HALPE_136.joint_names[94] == "left_wrist"
    assert get_skeleton("ochuman") is COCO_17 and get_skeleton("crowdpose") is CROWDPOSE_14


def test_categories_are_recognised_across_spellings() -> None:
    """CrowdPose's own files say ``head``/``neck``; MPII files may say ``l_hip`` or ``left_hip``."""
    crowd = {"id": 1, "name": "person", "keypoints": [*CROWDPOSE_14.joint_names[:12], "head", "neck"],
             "skeleton": [[13, 14]]}  # fmt: skip
    assert recognise_skeleton(crowd) is CROWDPOSE_14
    long = {"r_": "right_", "l_": "left_"}
    names = [long.get(n[:2], n[:2]) + n[2:] for n in MPII_16.joint_names]
    mpii = {"id": 1, "name": "person", "keypoints": names}
    assert recognise_skeleton(mpii) is MPII_16
    halpe = HALPE_136.to_coco_category()
    del halpe["flip_index"]
    assert recognise_skeleton(halpe) is HALPE_136
    other_sigmas = {**COCO_17.to_coco_category(), "sigmas": [0.05] * 17}
    assert recognise_skeleton(other_sigmas).sigmas == (0.05,) * 17  # the file's own values win
    custom = {"name": "hand", "keypoints": ["wrist", "thumb", "index"], "skeleton": [[1, 2], [1, 3]]}
    assert recognise_skeleton(custom) == Skeleton.from_coco_category(custom)


def test_skeleton_entries_naming_missing_joints_warn_and_are_dropped() -> None:
    category = {"name": "hand", "keypoints": ["wrist", "thumb", "index"], "skeleton": [[1, 2], [1, 4], [0, 1], "x"]}
    with pytest.warns(UserWarning, match=r"ann.json: category 'hand': 'skeleton' entries \[\[1, 4\], \[0, 1\], 'x'\]"):
        sk = Skeleton.from_coco_category(category, "ann.json")
    assert sk.edges == ((0, 1),)


def test_lsp_order_and_flip_pairs_match_the_release_readme() -> None:
    """The joint order of LSP's and LSPet's README (right ankle ... neck, head top), restated here."""
    readme = ["Right ankle", "Right knee", "Right hip", "Left hip", "Left knee", "Left ankle", "Right wrist",
              "Right elbow", "Right shoulder", "Left shoulder", "Left elbow", "Left wrist", "Neck",
              "Head top"]  # fmt: skip
    assert LSP_14.joint_names == tuple(n.lower().replace(" ", "_") for n in readme)
    assert LSP_14.flip_index == (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13)
    assert LSP_14.sigmas is None and len(LSP_14.edges) == 14
    assert get_skeleton("lsp") is LSP_14 and skeleton_spec(LSP_14) == "lsp_14"


def test_the_real_lspet_model_carries_the_lsp_joints(lspet_model: Path) -> None:
    """``lspet-hg1-128-cpu.safetensors`` came through a COCO file (its skeleton is named ``person``): the same
    names, flips and limbs as LSP_14, so a COCO category with its joints is recognised as LSP_14."""
    from hourglass.checkpoint.io import read_meta

    carried = read_meta(lspet_model).skeleton
    assert carried.name == "person" and carried.joint_names == LSP_14.joint_names
    assert carried.flip_index == LSP_14.flip_index and set(carried.edges) == set(LSP_14.edges)
    assert recognise_skeleton(carried.to_coco_category()) is LSP_14
