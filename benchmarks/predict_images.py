"""Throughput of ``Predictor`` end to end on image files: read, crop, network (with flip test), decode, map back.

Usage: python benchmarks/predict_images.py [--model hg2] [--size 256] [--images 16] [--batch 8]
                                           [--backends eager:fp32 onnxruntime:fp32 openvino:bf16]

Writes synthetic figures (``hourglass synth``) into a temporary folder, saves an untrained checkpoint of
``--model`` (speed does not depend on the weights), and for each backend:precision reports images/s and the
share of the time spent in the network (the rest: reading, cropping, decoding, mapping back). The first
call of each predictor is a warm-up and is not timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from hourglass.checkpoint.io import save_checkpoint
from hourglass.inference.predictor import Predictor
from hourglass.models import create_model
from hourglass.synthetic.figures import write_synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hg2")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--backends", nargs="+", default=["eager:fp32", "onnxruntime:fp32", "openvino:bf16"])
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = write_synthetic(Path(tmp) / "figs", args.images, "coco", image_size=(args.size, args.size))
        files = sorted((root / "images").iterdir())
        meta = {
            "model": {"name": args.model, "kwargs": {}},
            "data": {"input_size": [args.size] * 2, "heatmap_size": [args.size // 4] * 2, "skeleton": "mpii_16"},
        }
        ckpt = save_checkpoint(Path(tmp) / "m.safetensors", create_model(args.model), meta)
        print(f"{args.model} at {args.size}x{args.size}, {len(files)} images, batch {args.batch}, flip test on")
        for spec in args.backends:
            backend, precision = spec.split(":")
            predictor = Predictor.from_checkpoint(ckpt, backend=backend, precision=precision, batch_size=args.batch)
            network = predictor.runtime
            spent = [0.0]

            def timed(images, network=network, spent=spent):
                start = time.perf_counter()
                out = network(images)
                spent[0] += time.perf_counter() - start
                return out

            predictor.runtime = timed
            predictor.predict(files[: args.batch])  # warm-up
            spent[0] = 0.0
            start = time.perf_counter()
            predictor.predict(files)
            total = time.perf_counter() - start
            print(
                f"{backend:12s} {precision:5s} {len(files) / total:6.2f} images/s  "
                f"{1000 * total / len(files):7.1f} ms/image  network {100 * spent[0] / total:4.1f}%"
            )


if __name__ == "__main__":
    main()
