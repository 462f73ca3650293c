"""Frames/s of ``hourglass predict`` on a video with a person detector, against ``--detect-every``.

Usage: python benchmarks/video_detector.py [--detector yolox-m] [--every 1 5] [--threads default 1] [--repeats 2]
                                           [--frames 240] [--backend openvino --precision bf16] [--batch 8]

A 1280x720 synthetic video (``SyntheticVideo("side-by-side")``: two people walking, who leave the frame late in
the clip) runs through :class:`hourglass.video.stream.StreamRun` as ``hourglass predict VIDEO --detector ...
--detect-every N`` runs it: detection, crops, the pose network (an untrained hg2 at 256x256, flip test), tracking,
JSON, overlay drawing and encoding, overlapping. The detector is the published architecture re-stated in
``tests/detector_nets.py`` with random weights, run by :class:`hourglass.people.detect.PersonDetector` on each
frame it is asked about (its whole cost: letterbox, graph, NMS, decoding); since random weights find nobody, its
answer is the video's true boxes for that frame, so that the pose stage has the people a trained detector would
give it. ``--threads``: the detector's OpenVINO / ONNX Runtime threads (``default``: every core). Configurations
alternate ``--repeats`` times; each run prints frames/s, the detector's calls, people per frame and CPU per frame.

With ``--detect-every`` above 1, the frames between detections take their boxes from the tracks' last poses; the
untrained pose network's poses are scattered, so some of those boxes are dropped (fewer people per frame than at
``--detect-every 1``, printed) and those frames cost less than they would with trained weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from predict_video import checkpoint, cpu_name, cpu_seconds, write_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the re-stated detector networks


class TrueBoxes:
    """A detector that costs what ``detector`` costs and answers with the video's true boxes of the frame asked
    about (the ``n``-th call is frame ``n * every``, the order in which the people stage calls it)."""

    def __init__(self, detector, video, every: int) -> None:
        self.detector, self.video, self.every, self.calls = detector, video, every, 0

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.detector(rgb)
        people = self.video.truth(self.calls * self.every)
        self.calls += 1
        boxes = np.array([p.bbox for p in people], dtype=np.float64).reshape(-1, 4)
        return boxes, np.full(len(boxes), 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="yolox-m")
    parser.add_argument("--every", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--threads", nargs="+", default=["default"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["HOURGLASS_HOME"] = str(root / "home")
        from detector_nets import ARCHS, build, export_end2end
        from hourglass.inference.predictor import Predictor
        from hourglass.people.boxes import BoxChoice
        from hourglass.people.detect import PersonDetector
        from hourglass.predict import _Bar
        from hourglass.synthetic.video import SyntheticVideo
        from hourglass.video.sources import video_source
        from hourglass.video.stream import StreamOptions, StreamRun

        video = write_video(root / "clip.mp4", args.frames, 720, 1280)
        truth = SyntheticVideo("side-by-side", size=(720, 1280), num_frames=args.frames)
        onnx = root / f"{args.detector.replace('-', '_')}.onnx"  # the family (yolox, rtmdet) read from its name
        export_end2end(build(args.detector, quiet=True), ARCHS[args.detector]["size"], onnx)
        runtime = "openvino" if args.backend == "openvino" else "onnxruntime"
        precision = args.precision if runtime == "openvino" else "fp32"
        predictor = Predictor.from_checkpoint(
            checkpoint(root, "hg2", 256), backend=args.backend, precision=args.precision, batch_size=args.batch
        )
        predictor.heatmaps(np.zeros((args.batch, 3, 256, 256), np.float32))  # compiled before the clock
        print(f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs; video 1280x720, {args.frames} frames")
        print(f"pose hg2 256x256 {args.backend} {args.precision}, batch {args.batch}, flip test, overlay written")
        print(f"detector {args.detector} (random weights, answers the true boxes) on {runtime} {precision}")
        detectors = {}
        for threads in args.threads:
            count = None if threads == "default" else int(threads)
            detectors[threads] = PersonDetector(onnx, runtime=runtime, precision=precision, threads=count)
            detectors[threads](np.zeros((720, 1280, 3), np.uint8))  # compiled before the clock
        for repeat in range(args.repeats):
            for every in args.every:
                for threads, detector in detectors.items():
                    found = TrueBoxes(detector, truth, every)
                    options = StreamOptions(overlay=True, detector=found, detect_every=every)
                    stream = video_source(video)
                    run = StreamRun(stream, predictor, BoxChoice(None), options, _Bar(False), False)
                    out = root / f"run-{repeat}-{every}-{threads}"
                    out.mkdir()
                    start, cpu = time.perf_counter(), cpu_seconds()
                    run.run(out / "clip.keypoints.json", out / "clip.mp4")
                    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
                    print(
                        f"--detect-every {every:<2d} detector threads {threads:>7s}: {run.frames / seconds:6.1f} "
                        f"frames/s, {run.detector_calls} detector calls, {run.people / run.frames:.2f} "
                        f"people/frame, CPU {1000 * cpu / run.frames:.0f} ms/frame",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
