"""Runtimes behind one interface: each back-end at fp32 matches eager; bf16/int8 run; bad choices are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hourglass.data import HeatmapCodec
from hourglass.data.dataset import predict_dataset
from hourglass.device import usable_cores
from hourglass.errors import InputError
from hourglass.inference.accuracy import accuracy_cost
from hourglass.inference.runtimes import Runtime, calibration_batches, create_runtime
from hourglass.metrics import TOTAL_JOINTS, keypoint_pck_accuracy, mpii_pckh
from hourglass.models import StackedHourglass
from hourglass.synthetic.figures import SyntheticFigures


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)


@pytest.fixture(scope="module")
def reference(tiny, images) -> np.ndarray:
    with torch.no_grad():
        return tiny(torch.from_numpy(images))[:, -1].numpy()


@pytest.mark.parametrize("backend", ["eager", "onnxruntime", "openvino", "compile"])
def test_fp32_backends_match_eager(tiny, images, reference, backend) -> None:
    rt = create_runtime(tiny, backend, "fp32", input_size=(32, 32))
    assert isinstance(rt, Runtime) and (rt.backend, rt.precision) == (backend, "fp32")
    out = rt(images)
    assert out.dtype == np.float32 and out.shape == (2, 4, 8, 8)
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rt(torch.from_numpy(images[:1])), reference[:1], rtol=1e-4, atol=1e-4)


def test_openvino_spreads_a_batch_over_its_streams_in_order(tiny) -> None:
    """A batch runs as batch-1 requests on the throughput model's streams (two cores or more), each heatmap back
    at its own image's place; one image runs on the latency model."""
    images = np.random.default_rng(3).random((5, 3, 32, 32), dtype=np.float32)
    with torch.no_grad():
        reference = tiny(torch.from_numpy(images))[:, -1].numpy()
    rt = create_runtime(tiny, "openvino", "fp32", input_size=(32, 32))
    np.testing.assert_allclose(rt(images), reference, rtol=1e-4, atol=1e-4)
    if usable_cores() > 1:
        assert rt.streams is not None and rt.streams > 1 and rt.queue is not None and not rt.requests
    np.testing.assert_allclose(rt(images[3:4]), reference[3:4], rtol=1e-4, atol=1e-4)
    assert (1, 3, 32, 32) in rt.requests


@pytest.mark.parametrize("backend", ["eager", "openvino"])
def test_bf16_is_close(tiny, images, reference, backend) -> None:
    out = create_runtime(tiny, backend, "bf16", input_size=(32, 32))(images)
    scale = np.abs(reference).max()
    assert np.abs(out - reference).max() < 0.05 * scale


def test_int8_openvino_is_calibrated_and_close(tiny, images, reference) -> None:
    calibration = np.random.default_rng(1).random((8, 3, 32, 32), dtype=np.float32)
    rt = create_runtime(tiny, "openvino", "int8", calibration=calibration, input_size=(32, 32))
    out = rt(images)
    assert rt.precision == "int8" and out.shape == reference.shape
    assert np.corrcoef(out.ravel(), reference.ravel())[0, 1] > 0.95
    with pytest.raises(ValueError, match="needs calibration images"):
        create_runtime(tiny, "openvino", "int8", input_size=(32, 32))


def test_best_picks_an_available_backend(tiny, images, reference) -> None:
    rt = create_runtime(tiny, "best", "fp32", input_size=(32, 32))
    assert rt.backend in ("eager", "onnxruntime", "openvino")
    np.testing.assert_allclose(rt(images), reference, rtol=1e-4, atol=1e-4)


def test_bad_choices_and_inputs_are_named(tiny) -> None:
    with pytest.raises(ValueError, match=r"does not run int8.*use openvino"):
        create_runtime(tiny, "eager", "int8")
    with pytest.raises(ValueError, match="does not run bf16"):
        create_runtime(tiny, "onnxruntime", "bf16")
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        create_runtime(tiny, "tensorrt", "fp32")
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        create_runtime(tiny, "eager", "fp8")
    with pytest.raises(ValueError, match="neither a checkpoint file nor a model preset"):
        create_runtime("hg3", "eager")
    rt = create_runtime(tiny, "eager", input_size=(32, 32))
    with pytest.raises(ValueError, match=r"expected float32 images of shape \(B, 3, H, W\), got shape \(3, 32, 32\)"):
        rt(np.zeros((3, 32, 32), np.float32))


def test_calibration_batches_accepts_arrays_and_datasets() -> None:
    ds = SyntheticFigures(3, codec=HeatmapCodec((32, 32)))
    batches = calibration_batches(ds)
    assert len(batches) == 3 and batches[0].shape == (1, 3, 32, 32) and batches[0].dtype == np.float32
    assert len(calibration_batches(np.zeros((5, 3, 8, 8)), limit=4)) == 4


def test_accuracy_cost_scores_both_runtimes() -> None:
    codec = HeatmapCodec((64, 64), (16, 16), sigma=1.0)
    ds = SyntheticFigures(6, seed=3, codec=codec)
    targets = iter([ds[i]["heatmaps"].numpy() for i in range(len(ds))])

    def oracle(images: np.ndarray) -> np.ndarray:  # the ground-truth heatmaps, in dataset order
        return np.stack([next(targets) for _ in range(len(images))])

    net = StackedHourglass(num_stacks=1, num_joints=16, num_channels=16, depth=2).eval()
    untrained = create_runtime(net, "eager", input_size=(64, 64))
    cost = accuracy_cost(oracle, untrained, ds, batch_size=4)
    assert cost.pckh > 95.0 and cost.pckh_reference < 50.0
    assert cost.pckh_diff == pytest.approx(cost.pckh - cost.pckh_reference)
    assert cost.instances == 6 and 0 < cost.keypoints <= 96
    same = accuracy_cost(untrained, untrained, ds)
    assert same.pckh_diff == 0.0 and same.within_1px == 1.0


def test_accuracy_reports_the_official_14_joint_pckh() -> None:
    """``bench --accuracy`` prints its PCKh as the official one: it is metrics' official Total (14 joints, pelvis
    and thorax left out) on the same predictions, not all 16 joints pooled."""
    codec = HeatmapCodec((64, 64), (16, 16), sigma=1.0)
    ds = SyntheticFigures(6, seed=3, codec=codec)
    targets = {ds[i]["image"].numpy().tobytes(): ds[i]["heatmaps"].numpy() for i in range(len(ds))}

    def torso_wrong(images: np.ndarray) -> np.ndarray:  # the ground truth with pelvis and thorax half a map away
        maps = np.stack([targets[image.tobytes()] for image in images])
        maps[:, [6, 7]] = np.roll(maps[:, [6, 7]], 8, axis=(-2, -1))
        return maps

    cost = accuracy_cost(torso_wrong, torso_wrong, ds, batch_size=4)
    found = predict_dataset(lambda images: torso_wrong(images.numpy()), ds, codec, 16, batch_size=4)
    gt = ds.annotations()
    visible, head = np.asarray(gt["visible"]) > 0, np.asarray(gt["head_size"])
    official = mpii_pckh(found.keypoints, gt["keypoints"], visible, head, 0.5, "official")["Total"]
    all_16 = 100 * keypoint_pck_accuracy(found.keypoints, gt["keypoints"], visible, 0.5, head).average
    assert cost.pckh == cost.pckh_reference == official and cost.pckh_diff == 0.0
    assert official > 95 and all_16 < official - 5  # here the two poolings differ by the torso's share
    assert cost.keypoints == int(visible[:, list(TOTAL_JOINTS)].sum()) and cost.instances == 6
    with pytest.raises(InputError, match=r"heatmaps of shape \(4, 17, 16, 16\) for 4 crops; expected \(4, 16, h, w\)"):
        accuracy_cost(lambda im: np.zeros((len(im), 17, 16, 16), np.float32), torso_wrong, ds, batch_size=4)


def test_device_is_chosen_and_checked(tiny, images, reference) -> None:
    rt = create_runtime(tiny, "eager", "fp32", input_size=(32, 32), device="cpu")
    assert rt.device == torch.device("cpu")
    np.testing.assert_allclose(rt(images), reference, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="expected cpu, cuda, cuda:N or auto"):
        create_runtime(tiny, "eager", device="mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda:1': CUDA is not available here"):
            create_runtime(tiny, "eager", device="cuda:1")
    else:
        with pytest.raises(ValueError, match="runs on the CPU only; on cuda use eager or compile"):
            create_runtime(tiny, "openvino", device="cuda")
        gpu = create_runtime(tiny, "best", "fp32", input_size=(32, 32), device="cuda")
        assert gpu.backend == "eager"
        np.testing.assert_allclose(gpu(images), reference, rtol=1e-3, atol=1e-3)


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` (and their loaded submodules) look uninstalled: ``sys.modules[name] = None`` for imports,
    ``find_spec`` answering None for :func:`hourglass.extras.extra_installed`."""
    import importlib.util
    import sys

    for name in modules:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")] or [name]:
            monkeypatch.setitem(sys.modules, loaded, None)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in modules else real(name, *a))


def test_auto_takes_the_fastest_installed_pair_with_a_negligible_cost(monkeypatch) -> None:
    """OpenVINO bf16 where the CPU runs bf16 natively, else OpenVINO fp32, ONNX Runtime fp32, eager fp32; never
    int8 (not negligible); a precision given keeps to the back-ends that run it; a GPU gets eager."""
    from hourglass.inference import runtimes

    assert runtimes.auto_choices()[-1] == ("eager", "fp32")
    assert ("openvino", "int8") not in runtimes.auto_choices()
    monkeypatch.setattr(runtimes, "native_bf16", lambda: True)
    assert runtimes.auto_choices() == list(runtimes.AUTO_ORDER)
    monkeypatch.setattr(runtimes, "native_bf16", lambda: False)
    assert runtimes.auto_choices()[0] == ("openvino", "fp32")
    assert runtimes.auto_choices("bf16") == [("openvino", "bf16"), ("eager", "bf16")]
    _hide(monkeypatch, "openvino")
    assert runtimes.auto_choices() == [("onnxruntime", "fp32"), ("eager", "fp32")]
    _hide(monkeypatch, "onnxruntime")
    assert runtimes.auto_choices() == [("eager", "fp32")]
    monkeypatch.setattr(runtimes, "resolve_device", lambda device: torch.device("cuda"))
    assert runtimes.auto_choices() == [("eager", "fp32")] and runtimes.auto_choices("bf16") == [("eager", "bf16")]


def test_auto_builds_its_first_choice_and_falls_back_quietly(tiny, images, reference, monkeypatch) -> None:
    from hourglass.errors import ExportError
    from hourglass.inference import runtimes

    rt = create_runtime(tiny, "auto", "auto", input_size=(32, 32))
    assert (rt.backend, rt.precision) == runtimes.auto_choices()[0] and rt.note == ""
    assert rt(images).shape == reference.shape
    assert create_runtime(tiny, "eager", "auto", input_size=(32, 32)).precision == "fp32"  # a named back-end: fp32

    build = runtimes._build

    def refuse_openvino(model, backend, *args, **kwargs):
        if backend == "openvino":
            raise ExportError("this network does not export\nsecond line")
        return build(model, backend, *args, **kwargs)

    monkeypatch.setattr(runtimes, "_build", refuse_openvino)
    monkeypatch.setattr(runtimes, "native_bf16", lambda: True)
    rt = create_runtime(tiny, "auto", "auto", input_size=(32, 32))
    assert (rt.backend, rt.precision) == ("onnxruntime", "fp32")
    assert rt.note == "openvino bf16: this network does not export; openvino fp32: this network does not export"
    np.testing.assert_allclose(rt(images), reference, rtol=1e-4, atol=1e-4)
    line = runtimes.runtime_line(rt, "auto", "auto")
    assert line.startswith("pose network: onnxruntime fp32 (auto: ") and "skipped openvino bf16" in line
    assert runtimes.runtime_line(build(tiny, "eager", "fp32", (32, 32), None), "eager", "fp32") == (
        "pose network: eager fp32"
    )
