"""Peak memory of ``hourglass predict`` on a short and a ten times longer video: keypoints stream to disk, so the
peak should not grow with the length.

Usage: python benchmarks/predict_memory.py [--short 300] [--long 3000] [--height 120 --width 160]

Writes two synthetic videos (``side-by-side``: two people who walk out of view after a few seconds, then nobody)
and an untrained small checkpoint (hg1, 16 channels, 64x64 input), then runs ``hourglass predict`` on each in a
fresh process, twice: with the video's ``.boxes.json`` (two tracks, then frames with nobody) and with the whole
frame as the person (a pose on every frame), both with ``--smooth`` and the overlay video written; it reads each
process's peak resident memory (``ru_maxrss`` of the child, from ``os.wait4``). Prints the peaks and their ratio;
the target is a ratio within 1.10.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def peak_rss_mib(args: list[str]) -> float:
    """Run ``args`` in a child process; its peak resident set size in MiB (Linux reports KiB)."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(args)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=300)
    parser.add_argument("--long", type=int, default=3000)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--width", type=int, default=160)
    args = parser.parse_args()
    from hourglass.checkpoint.io import save_checkpoint
    from hourglass.models import create_model
    from hourglass.synthetic.video import write_synthetic_video

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        meta = {
            "model": {"name": "hg1", "kwargs": {"num_channels": 16}},
            "data": {"input_size": [64, 64], "heatmap_size": [16, 16], "skeleton": "mpii_16"},
        }
        ckpt = save_checkpoint(root / "m.safetensors", create_model("hg1", num_channels=16), meta)
        folders = {
            frames: write_synthetic_video(
                root / f"v{frames}", ["side-by-side"], size=(args.height, args.width), num_frames=frames
            )
            for frames in (args.short, args.long)
        }
        for mode in ("boxes", "whole frame"):
            peaks = {}
            for frames, folder in folders.items():
                command = [sys.executable, "-m", "hourglass", "predict", str(folder / "side-by-side.mp4")]
                command += ["--checkpoint", str(ckpt), "--out", str(root / f"out{frames}"), "--smooth"]
                if mode == "boxes":
                    command += ["--boxes", str(folder / "side-by-side.boxes.json")]
                peaks[frames] = peak_rss_mib(command)
                print(f"{mode:12s} {frames:5d} frames: peak RSS {peaks[frames]:.1f} MiB", flush=True)
            ratio = peaks[args.long] / peaks[args.short]
            print(f"{mode:12s} ratio {args.long} / {args.short} frames: {ratio:.3f} (target <= 1.10)", flush=True)


if __name__ == "__main__":
    main()
