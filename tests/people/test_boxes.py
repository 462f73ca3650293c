"""Person boxes: unusable boxes named, detections files read, greedy suppression, the people chosen per picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hourglass.people.boxes import (
    BOX_THRESHOLD,
    NMS_THRESHOLD,
    BoxChoice,
    box_iou,
    box_problem,
    read_boxes,
    suppress_overlaps,
)


def test_box_problems_are_named() -> None:
    assert box_problem([10, 10, 20, 20], 100, 80) is None
    assert box_problem([-30, -10, 40, 40], 100, 80) is None  # partly outside: fine
    assert "zero size" in box_problem([10, 10, 0, 20], 100, 80)
    assert "outside the 100x80 image" in box_problem([100, 10, 5, 5], 100, 80)
    assert "outside" in box_problem([-10, -10, 10, 10], 100, 80)
    assert "non-finite" in box_problem([np.nan, 0, 5, 5], 100, 80)


def test_read_boxes_errors(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"image_id": 1}')
    with pytest.raises(ValueError, match=r"a.json: expected a JSON list"):
        read_boxes(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('[{"image_id": 1, "bbox": [1, 2, 3]}]')
    with pytest.raises(ValueError, match=r"b.json: detection 0: bbox \[1, 2, 3\] is not \[x, y, w, h\]"):
        read_boxes(tmp_path / "b.json")
    with pytest.raises(ValueError, match=r"c\.json: no such detections file"):
        read_boxes(tmp_path / "c.json")


def test_suppress_overlaps_is_greedy_by_score() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10], [6, 0, 10, 10]], float)
    scores = np.array([0.5, 0.9, 0.4, 0.5, 0.6])
    # 1 (0.9) removes 0 and 3 (IoU 9/11); 4 (0.6) overlaps 1 by 5/15 = 0.33 > 0.3; 2 overlaps nothing
    assert suppress_overlaps(boxes, scores, 0.3).tolist() == [1, 2]
    assert suppress_overlaps(boxes, scores, 0.4).tolist() == [1, 4, 2]
    assert sorted(suppress_overlaps(boxes, scores, 1.0).tolist()) == [0, 1, 2, 3, 4]  # 1 keeps everything
    assert suppress_overlaps(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    np.testing.assert_allclose(box_iou([0, 0, 10, 10], boxes[[1, 2, 4]]), [90 / 110, 0.0, 40 / 160])


def test_cli_threshold_defaults_are_the_library_ones() -> None:
    import inspect

    from hourglass.cli import predict as predict_cmd

    defaults = {name: p.default for name, p in inspect.signature(predict_cmd).parameters.items()}
    assert (defaults["box_threshold"], defaults["nms_threshold"]) == (BOX_THRESHOLD, NMS_THRESHOLD)


def test_box_choice_thresholds_suppresses_and_counts() -> None:
    grouped = {
        "a": [
            ([0, 0, 10, 10], 0.9, 1, "a"),
            ([1, 0, 10, 10], 0.8, 1, "a"),  # overlaps the first: suppressed
            ([20, 20, 5, 5], 0.3, 1, "a"),  # at the threshold: dropped
            ([50, 50, 0, 5], 0.7, 1, "a"),  # zero size: a problem
            ([30, 0, 10, 10], 0.5, 1, "a"),
        ]
    }
    choose = BoxChoice(grouped, "dets.json")
    kept, problems = choose(["a.png", "a"], 64, 64, "a.png", image_id="ignored")
    assert [d[0] for d in kept] == [[0, 0, 10, 10], [30, 0, 10, 10]]
    assert problems == ["a.png: box 3 (image_id 'a') [50.0, 50.0, 0.0, 5.0] has zero size (width 0, height 5); skipped"]
    assert (choose.read, choose.low_score, choose.overlapping) == (5, 1, 1)
    assert choose(["b.png", "b"], 64, 64, "b.png", image_id="b") == ([], [])
    assert choose.take_unmatched() == ["b.png"] and choose.take_unmatched() == []
    whole = BoxChoice(None)
    assert whole(["b"], 64, 48, "b.png", image_id="b") == ([([-0.5, -0.5, 64.0, 48.0], 1.0, 1, "b")], [])
    assert whole.boxes(whole(["b"], 64, 48, "b.png", "b")[0]) is None  # the whole image, fitted without padding
