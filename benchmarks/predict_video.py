"""End-to-end frames/s of ``hourglass predict`` on a video against the network's own frames/s, side by side.

Usage: python benchmarks/predict_video.py [--frames 64] [--height 720 --width 1280] [--batch 8] [--repeats 3]
                                          [--device cpu|cuda]
                                          [--configs hg2:256:eager:bf16 hg2:256:openvino:bf16 demo:128:eager:bf16]
                                          [--no-overlay]

Writes a synthetic video (``SyntheticVideo("side-by-side")`` at ``--height`` x ``--width``) and, per config
``MODEL:SIZE:BACKEND:PRECISION`` (``demo`` is the demo's model: hg1 with 128 channels), an untrained checkpoint
(speed does not depend on the weights). For each it measures, in this one run:

- **network**: frames/s of the network alone at ``--batch`` whole-frame crops per call with the flip test (so each
  call runs ``2 x batch`` inputs), on random inputs, after one warm-up call, over as many frames as the video has:
  what ``hourglass bench`` throughput / 2 gives;
- **end to end**: frames/s of one ``hourglass predict`` video run (:class:`hourglass.video.stream.StreamRun`:
  decode, crops, network, decoding, tracking, JSON, overlay drawing and encoding, overlapping), the whole frame as
  the person, after the predictor is built (start-up, which includes OpenVINO's compile, is reported apart);
- the ratio of the two, and the floors that do not depend on the model: decoding alone and encoding alone;
- the CPU time per frame of each (all threads; ``network / end to end``): when the network alone keeps every core
  busy, the end-to-end ratio cannot beat their quotient, whatever overlaps; and that of the video run by thread:
  ``MainThread`` is the pose stage (crops, the runtime's calls, heatmap decoding, tracking, JSON), ``runtime,
  codec`` the threads Python did not start (the runtime's workers, FFmpeg's decoder), ``hourglass-read`` decoding
  and colour conversion, ``hourglass-draw`` drawing (and the conversion to BGR), ``hourglass-write`` encoding.

The two are measured one after the other ``--repeats`` times (network, video, network, video ...), each ratio from a
pair a few seconds apart, and the median ratio is reported with the range: on a shared machine a single pair can be
off by 10% either way.

The start-up of OpenVINO is timed twice (a first build, then a second with its compiled-model cache under
``$HOURGLASS_HOME``, which this script points at a fresh temporary folder).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def write_video(path: Path, frames: int, height: int, width: int) -> Path:
    from hourglass.synthetic.video import SyntheticVideo

    video = SyntheticVideo("side-by-side", size=(height, width), num_frames=frames)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), video.fps, (width, height))
    for t in range(frames):
        writer.write(cv2.cvtColor(video.frame(t), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def checkpoint(folder: Path, model: str, size: int) -> Path:
    from hourglass.checkpoint.io import save_checkpoint
    from hourglass.models import create_model

    name, kwargs = ("hg1", {"num_channels": 128}) if model == "demo" else (model, {})
    meta = {
        "model": {"name": name, "kwargs": kwargs},
        "data": {"input_size": [size, size], "heatmap_size": [size // 4] * 2, "skeleton": "mpii_16"},
    }
    torch.manual_seed(0)
    return save_checkpoint(folder / f"{model}-{size}.safetensors", create_model(name, **kwargs), meta)


def cpu_seconds() -> float:
    """CPU time of this process so far, all threads, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def network_fps(predictor, batch: int, size: int, calls: int = 3) -> tuple[float, float]:
    """Frames/s of ``predictor.heatmaps`` (the network with the flip test) on ``calls`` batches of random inputs,
    and the CPU milliseconds it took per frame."""
    images = np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32)
    predictor.heatmaps(images)  # warm-up (and OpenVINO's compile for this batch)
    start, cpu = time.perf_counter(), cpu_seconds()
    for _ in range(calls):
        predictor.heatmaps(images)
    frames = batch * calls
    return frames / (time.perf_counter() - start), 1000 * (cpu_seconds() - cpu) / frames


class ThreadClock:
    """CPU time of a span by thread: each Python thread started within it measures its own (``time.thread_time``
    around its ``run``, under its name: the pipeline's ``hourglass-*`` stages), the calling thread its own
    (``MainThread``: the pose stage), and the rest of the process's CPU time is that of the threads Python did
    not start (``runtime, codec``: the runtime's workers, FFmpeg's decoder)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.started: list[threading.Thread] = []
        self.original = threading.Thread.run

    def __enter__(self) -> ThreadClock:
        clock, original = self, self.original

        def run(thread: threading.Thread) -> None:
            clock.started.append(thread)
            start = time.thread_time()
            try:
                original(thread)
            finally:
                clock.seconds[thread.name] = clock.seconds.get(thread.name, 0.0) + time.thread_time() - start

        threading.Thread.run = run  # type: ignore[method-assign]
        self.process, self.main = cpu_seconds(), time.thread_time()
        return self

    def __exit__(self, *_: object) -> None:
        main = time.thread_time() - self.main
        for thread in self.started:  # stages that end on their own after the run returns
            thread.join(timeout=5.0)
        threading.Thread.run = self.original  # type: ignore[method-assign]
        self.seconds["MainThread"] = main
        self.seconds["runtime, codec"] = cpu_seconds() - self.process - sum(self.seconds.values())


def pipeline_fps(predictor, video: Path, out: Path, overlay: bool) -> tuple[float, float, dict[str, float]]:
    """Frames/s of one ``hourglass predict`` run on ``video``, the CPU milliseconds it took per frame, and those
    per stage (:class:`ThreadClock`)."""
    from hourglass.people.boxes import BoxChoice
    from hourglass.predict import _Bar
    from hourglass.video.sources import video_source
    from hourglass.video.stream import StreamOptions, StreamRun

    stream = video_source(video)
    run = StreamRun(stream, predictor, BoxChoice(None), StreamOptions(overlay=overlay), _Bar(False), False)
    with ThreadClock() as clock:
        start, cpu = time.perf_counter(), cpu_seconds()
        run.run(out / "clip.keypoints.json", out / "clip.mp4" if overlay else None)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    stages = {name: 1000 * value / run.frames for name, value in clock.seconds.items()}
    return run.frames / seconds, 1000 * cpu / run.frames, stages


def floors(video: Path, out: Path) -> tuple[float, float]:
    """Frames/s of decoding the video alone, and of encoding its frames alone (mp4v)."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    start = time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    decode = len(frames) / (time.perf_counter() - start)
    capture.release()
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out / "encode.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height))
    start = time.perf_counter()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return decode, len(frames) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="network / video pairs measured per config")
    parser.add_argument(
        "--configs", nargs="+", default=["hg2:256:eager:bf16", "hg2:256:openvino:bf16", "demo:128:eager:bf16"]
    )
    parser.add_argument("--no-overlay", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where the eager back-end runs")
    args = parser.parse_args()
    if args.device != "cpu" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this machine has no CUDA device (torch {torch.__version__})")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["HOURGLASS_HOME"] = str(root / "home")  # a cold OpenVINO cache, then a warm one
        from hourglass.inference.predictor import Predictor

        video = write_video(root / "clip.mp4", args.frames, args.height, args.width)
        decode, encode = floors(video, root)
        print(f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}")
        if args.device != "cpu":
            print(f"device: {args.device}, {torch.cuda.get_device_name(torch.device(args.device))}")
        print(f"video {args.width}x{args.height}, {args.frames} frames, batch {args.batch}, flip test, whole frame")
        print(f"floors: decode {decode:.1f} frames/s, encode (mp4v) {encode:.1f} frames/s")
        head = f"{'config':26s} {'start s':>8s} {'network f/s':>12s} {'end-to-end f/s':>15s} {'ratio':>6s}"
        print(f"{head}    CPU ms/frame")
        summary = []
        for spec in args.configs:
            model, size, backend, precision = spec.split(":")
            ckpt = checkpoint(root, model, int(size))
            starts = []
            for _ in range(2 if backend == "openvino" else 1):
                start = time.perf_counter()
                predictor = Predictor.from_checkpoint(
                    ckpt, backend=backend, precision=precision, batch_size=args.batch, device=args.device
                )
                predictor.heatmaps(np.zeros((args.batch, 3, int(size), int(size)), np.float32))  # compile now
                starts.append(time.perf_counter() - start)
            shown = " then ".join(f"{s:.1f}" for s in starts)
            ratios = []
            for repeat in range(args.repeats):
                calls = max(1, round(args.frames / args.batch))
                net, net_cpu = network_fps(predictor, args.batch, int(size), calls=calls)
                out = root / f"{spec.replace(':', '-')}-{repeat}"
                out.mkdir()
                e2e, e2e_cpu, stages = pipeline_fps(predictor, video, out, not args.no_overlay)
                ratios.append(e2e / net)
                cpu = f"{net_cpu:.1f} / {e2e_cpu:.1f}"
                print(f"{spec:26s} {shown:>8s} {net:12.2f} {e2e:15.2f} {e2e / net:6.2f}x {cpu:>15s}", flush=True)
                shown = ""
                split = sorted(stages.items(), key=lambda kv: -kv[1])
                print("    CPU ms/frame by thread: " + ", ".join(f"{k} {v:.1f}" for k, v in split if v >= 0.05))
            summary.append(f"{spec}: median {np.median(ratios):.2f}x (from {min(ratios):.2f}x to {max(ratios):.2f}x)")
        print("\n".join(summary))


if __name__ == "__main__":
    main()
