"""Identities through time: the tracker on the synthetic videos' ground truth, patience, ids never reused, and
the identity-switch count itself."""

from __future__ import annotations

import numpy as np
import pytest

from hourglass.data import MPII_16, get_skeleton
from hourglass.people.track import MPII_SIGMAS, Tracker, identity_switches, oks_sigmas
from hourglass.synthetic.video import VIDEO_SCENARIOS, SyntheticVideo


def _follow(video: SyntheticVideo, tracker: Tracker, with_boxes: bool = True) -> tuple[int, dict[int, list[int]]]:
    """Run ``tracker`` over the ground truth of ``video``; the identity switches and ids of each true person."""
    truth, predicted = [], []
    for t in range(video.num_frames):
        people = video.truth(t)
        boxes = np.array([p.bbox for p in people]).reshape(-1, 4)
        keypoints = np.array([p.keypoints for p in people]).reshape(-1, 16, 2)
        scores = np.array([p.visible == 2 for p in people], dtype=float).reshape(-1, 16)
        given = boxes if with_boxes else boxes + 10_000.0 * np.arange(1, len(boxes) + 1)[:, None]  # boxes never meet
        ids = tracker.update(t, given, keypoints, scores)
        truth.append({p.track_id: p.bbox for p in people})
        predicted.append(dict(zip(ids.tolist(), boxes, strict=True)))
    return identity_switches(truth, predicted)


@pytest.mark.parametrize("scenario", VIDEO_SCENARIOS)
def test_no_identity_switch_on_the_synthetic_videos(scenario: str) -> None:
    video = SyntheticVideo(scenario)
    switches, ids = _follow(video, Tracker(oks_sigmas(MPII_16), patience=round(video.fps)))
    assert switches == 0
    assert all(len(v) == 1 for v in ids.values()), ids  # one predicted id per true person, from start to end
    assert len({v[0] for v in ids.values()}) == len(ids)  # and different people have different ids
    if scenario == "leave-arrive":
        assert ids[2][0] > ids[1][0]  # the newcomer has a new id
    if scenario == "occlusion":
        assert list(ids) == [1]  # the hidden walker came back with their id


def test_pose_similarity_alone_keeps_side_by_side_people_apart() -> None:
    video = SyntheticVideo("side-by-side")
    switches, ids = _follow(video, Tracker(oks_sigmas(MPII_16), patience=25), with_boxes=False)
    assert switches == 0 and sorted(len(v) for v in ids.values()) == [1, 1]


def test_patience_and_ids_never_reused() -> None:
    tracker = Tracker(np.full(2, 0.08), patience=3)
    box = np.array([[10.0, 10.0, 40.0, 80.0]])
    pose, scores = np.array([[[20.0, 20.0], [30.0, 80.0]]]), np.ones((1, 2))
    assert tracker.update(0, box, pose, scores).tolist() == [1]
    assert tracker.update(1, np.zeros((0, 4)), np.zeros((0, 2, 2)), np.zeros((0, 2))).tolist() == []
    assert tracker.update(4, box, pose, scores).tolist() == [1]  # unseen 3 frames (1-3), patience 3: kept
    assert tracker.update(9, box, pose, scores).tolist() == [2]  # unseen 4 frames (5-8): a new id
    assert tracker.update(
        10, np.concatenate([box, box + 300]), np.concatenate([pose, pose + 300]), np.ones((2, 2))
    ).tolist() == [2, 3]


def test_identity_switches_counts_a_swap() -> None:
    a, b = np.array([0.0, 0, 10, 10]), np.array([50.0, 0, 10, 10])
    truth = [{1: a, 2: b}] * 4
    predicted = [{7: a, 8: b}, {7: a, 8: b}, {8: a, 7: b}, {8: a, 7: b}]
    switches, ids = identity_switches(truth, predicted)
    assert switches == 2 and ids == {1: [7, 8], 2: [8, 7]}


def test_oks_sigmas_of_known_skeletons() -> None:
    np.testing.assert_allclose(oks_sigmas(MPII_16), MPII_SIGMAS)
    coco = get_skeleton("coco_17")
    np.testing.assert_allclose(oks_sigmas(coco), coco.sigmas)
