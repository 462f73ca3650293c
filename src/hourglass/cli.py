"""Command-line interface: parses arguments and calls engine/deploy; no logic of its own.

Expected errors (bad files, bad settings) print one line to stderr and exit with status 1 or 2, without
a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    name="hourglass",
    help="Stacked Hourglass Networks for 2D keypoint estimation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")

InputSize = Annotated[
    tuple[int, int, int] | None,
    typer.Option("--input-size", help="C H W of one input (default: 3 256 256, or C 64 64 for a lone hourglass)"),
]


def run_guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; expected errors (ValueError, OSError, KeyError) become one message and exit status 1."""
    try:
        return fn()
    except (ValueError, OSError, KeyError) as err:
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@app.command()
def summary(
    model: Annotated[str, typer.Argument(help="a name from `hourglass list-models`")],
    input_size: InputSize = None,
    depth: Annotated[int, typer.Option(help="nesting depth of the layer table")] = 3,
) -> None:
    """Layer table with output shapes and parameters (torchinfo), total parameters and multiply-adds."""
    from hourglass.engine.inspect import default_input_size, summarize
    from hourglass.models import create_model

    def go() -> None:
        net = create_model(model)
        s = summarize(net, input_size or default_input_size(net), depth=depth)
        console.print(s.table, highlight=False, soft_wrap=True)
        console.print(f"Input size: {' x '.join(map(str, s.input_size))}")
        console.print(f"Total parameters: {s.parameters:,}")
        console.print(f"Multiply-adds (torch.utils.flop_counter, convolutions): {s.macs / 1e9:.2f} G")

    run_guarded(go)


@app.command()
def probe(
    model: Annotated[str, typer.Argument(help="a name from `hourglass list-models`")],
    layer: Annotated[list[str], typer.Option("--layer", help="dotted layer name, repeatable")],
    input_size: InputSize = None,
) -> None:
    """Run one forward pass with hooks and print each named layer's output shape."""
    from hourglass.engine.inspect import default_input_size
    from hourglass.engine.inspect import probe as probe_layers
    from hourglass.models import create_model

    def go() -> None:
        net = create_model(model)
        shapes = probe_layers(net, layer, input_size or default_input_size(net))
        for name in layer:
            typer.echo(f"{name}\t{tuple(shapes[name])}")

    run_guarded(go)


@app.command("list-models")
def list_models_cmd() -> None:
    """Names of the model presets."""
    from hourglass.models import list_models

    for name in list_models():
        console.print(name)


@app.command()
def demo(
    config: Annotated[str, typer.Option(help="the demo recipe")] = "configs/synthetic-hg1.yaml",
    overrides: Annotated[list[str] | None, typer.Option("--set", help="key=value override, repeatable")] = None,
    num_train: Annotated[int, typer.Option(help="synthetic training images")] = 4000,
    num_val: Annotated[int, typer.Option(help="synthetic held-out images")] = 500,
) -> None:
    """The main job: synthesise figures, train a small hourglass on the CPU (time-capped), show it learnt."""
    from hourglass.engine.config import load_config
    from hourglass.engine.demo import run_demo

    def go() -> None:
        cfg = load_config(config, overrides)
        m = run_demo(cfg, num_train=num_train, num_val=num_val, log=lambda s: console.print(s, highlight=False))
        if m is None:
            raise typer.Exit(130)
        console.print(
            f"PCKh@0.5 on {m['held_out_images']} held-out figures: untrained {m['untrained_pckh']:.1f}% -> "
            f"trained {m['trained_pckh']:.1f}% ({m['steps']} steps, {m['train_seconds']:.0f} s of training); "
            f"target {m['target_pckh']:.0f}%: {'met' if m['target_met'] else 'not met'}"
        )
        console.print(f"outputs in {cfg.train.out_dir}/: metrics.json, curves.png, overlays/, last.safetensors")

    run_guarded(go)


@app.command("eval-mpii")
def eval_mpii(
    preds: Annotated[
        str, typer.Option("--preds", help="predictions .mat/.h5 with preds (N,16,2) or (2,16,N), 1-based")
    ],
    gt: Annotated[str, typer.Option("--gt", help="gt_valid.mat-style ground truth, or pose-hg-train's valid.h5")],
    protocol: Annotated[
        str,
        typer.Option("--protocol", help="official (MATLAB evaluatePCKh.m), bearpaw or hrnet (their scripts)"),
    ] = "official",
    threshold: Annotated[float, typer.Option("--threshold", help="PCKh threshold (fraction of head size)")] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
) -> None:
    """MPII PCKh of a predictions file against a gt_valid.mat-style ground truth (or valid.h5)."""
    import json

    from hourglass.engine.mpii_eval import evaluate_mpii_files, pckh_table

    def go() -> None:
        scores = evaluate_mpii_files(preds, gt, protocol, threshold)
        if as_json:
            print(json.dumps(scores))
        else:
            console.print(pckh_table(scores, f"PCKh@{threshold:g} ({protocol}) of {preds}", console.width))

    run_guarded(go)


@app.command()
def synth(
    out: Annotated[str, typer.Option("--out", help="folder to create (images/ and annotations)")],
    num: Annotated[int, typer.Option("--num", help="number of images, one figure each")],
    format: Annotated[str, typer.Option("--format", help="coco or mpii")] = "coco",
    seed: Annotated[int, typer.Option("--seed", help="figure seed")] = 0,
    image_size: Annotated[tuple[int, int], typer.Option("--image-size", help="H W of each image")] = (128, 128),
    image_format: Annotated[str, typer.Option("--image-format", help="png or jpg")] = "png",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing folder")] = False,
) -> None:
    """Write synthetic figures (MPII_16 joints) as real image files with COCO or MPII annotations."""
    from hourglass.data.synthetic import write_synthetic

    path = run_guarded(lambda: write_synthetic(out, num, format, seed, image_size, image_format, overwrite))
    console.print(f"wrote {num} images and {format} annotations to {path}", highlight=False)


@app.command()
def train(
    config: Annotated[str, typer.Option(help="YAML recipe, e.g. configs/mpii-hg2.yaml")],
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="dotted key=value override, e.g. optim.lr=1e-3; repeatable")
    ] = None,
    resume: Annotated[str | None, typer.Option(help="last.safetensors of a run to continue")] = None,
) -> None:
    """Train a model (one process, or one per GPU/CPU group under torchrun)."""
    from hourglass.engine.config import load_config
    from hourglass.engine.train import train as train_run

    def go() -> None:
        result = train_run(load_config(config, overrides), resume=resume)
        if result.status == "interrupted":
            raise typer.Exit(130)

    run_guarded(go)


@app.command("eval")
def eval_cmd(
    config: Annotated[str, typer.Option(help="YAML recipe whose data.val split is scored")],
    checkpoint: Annotated[str, typer.Option(help="a .safetensors checkpoint")],
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="flip test (average with the mirrored crop)")] = True,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="key=value override, repeatable")] = None,
    json_out: Annotated[str | None, typer.Option("--json", help="where to write the scores")] = None,
) -> None:
    """Score a checkpoint on the validation split: PCKh (MPII-style), COCO OKS AP, or PCK@0.2."""
    from hourglass.engine.config import load_config
    from hourglass.engine.evaluate import evaluate, result_table

    def go() -> None:
        result = evaluate(load_config(config, overrides), checkpoint, flip=flip, out_json=json_out)
        console.print(result_table(result, console.width))
        console.print(f"scores written to {result.json_path}")

    run_guarded(go)


@app.command()
def predict(
    checkpoint: Annotated[str, typer.Option("--checkpoint", help=".safetensors checkpoint")],
    inputs: Annotated[
        list[str] | None,
        typer.Argument(help="PNG/JPEG files, videos (mp4, avi, mov ...) or folders of them", metavar="[INPUT]..."),
    ] = None,
    boxes: Annotated[str | None, typer.Option("--boxes", help="COCO detection results JSON, one person a box")] = None,
    box_threshold: Annotated[
        float, typer.Option("--box-threshold", help="drop boxes scoring at or under this (mmpose's demo: 0.3)")
    ] = 0.3,
    nms_threshold: Annotated[
        float, typer.Option("--nms-threshold", help="drop boxes overlapping a better one by IoU above this (1: keep)")
    ] = 0.3,
    out: Annotated[str, typer.Option("--out", help="output folder")] = "predictions",
    batch_size: Annotated[int, typer.Option("--batch-size", help="crops per network call")] = 8,
    heatmaps: Annotated[bool, typer.Option("--heatmaps", help="also write a heatmap montage per person")] = False,
    frames: Annotated[bool, typer.Option("--frames", help="each folder given is the frames of one video")] = False,
    camera: Annotated[int | None, typer.Option("--camera", help="also read camera N (Ctrl+C stops it)")] = None,
    max_frames: Annotated[int | None, typer.Option("--max-frames", help="at most this many frames a video")] = None,
    fps: Annotated[float | None, typer.Option("--fps", help="overlay video frame rate (default: the source's)")] = None,
    backend: Annotated[str, typer.Option("--backend", help="eager, compile, onnxruntime, openvino or best")] = "eager",
    precision: Annotated[str, typer.Option("--precision", help="fp32, bf16 or int8 (int8: openvino)")] = "fp32",
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N (eager and compile)")] = "cpu",
) -> None:
    """Keypoints of the people in images, videos and camera frames: COCO results JSON and overlays under --out."""
    from hourglass.engine.predict import predict_files

    report = run_guarded(
        lambda: predict_files(
            inputs or [],
            checkpoint,
            out,
            boxes,
            batch_size,
            heatmaps,
            backend,
            precision,
            progress=err_console.is_terminal,
            device=device,
            box_threshold=box_threshold,
            nms_threshold=nms_threshold,
            frames=frames,
            camera=camera,
            max_frames=max_frames,
            fps=fps,
        )
    )
    for note in report.notes:
        err_console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    for failure in report.failures:
        err_console.print(f"[bold red]error:[/] {escape(failure)}", highlight=False, soft_wrap=True)
    if boxes is not None:
        console.print(
            f"boxes: {report.boxes_read} for these inputs, {report.boxes_low_score} scoring <= {box_threshold:g} "
            f"and {report.boxes_overlapping} overlapping a better one (IoU > {nms_threshold:g}) dropped",
            highlight=False,
        )
    done = f"{report.people} people in {report.images} images"
    if report.videos or report.frames or report.broken_frames:
        done += f" and {report.frames} frames of {report.videos} videos"
        done += f" ({report.broken_frames} broken frames skipped)" if report.broken_frames else ""
        console.print(f"{done} -> {out}/", highlight=False)
    else:
        console.print(f"{done} -> {out}/keypoints.json", highlight=False)
    if report.failures:
        raise typer.Exit(1)


HeightWidth = Annotated[
    tuple[int, int] | None, typer.Option("--input-size", help="H W of the input (default: the checkpoint's)")
]


@app.command()
def export(
    checkpoint: Annotated[str, typer.Option("--checkpoint", help=".safetensors checkpoint")],
    format: Annotated[str, typer.Option("--format", help="onnx, openvino or torchscript")],
    out: Annotated[str, typer.Option("--out", help="output file (.onnx, .xml with .bin beside it, .pt)")],
    input_size: HeightWidth = None,
    all_stacks: Annotated[bool, typer.Option("--all-stacks", help="output every stack's heatmaps")] = False,
    fold: Annotated[bool, typer.Option("--fold/--no-fold", help="fold BatchNorm into convolutions")] = True,
) -> None:
    """Export a checkpoint (dynamic batch), check it against eager PyTorch and print the max difference."""
    from hourglass.deploy.export import export_checkpoint

    result = run_guarded(lambda: export_checkpoint(checkpoint, format, out, input_size, all_stacks, fold))
    console.print(f"wrote {', '.join(map(str, result.files))}", highlight=False, soft_wrap=True)
    console.print(
        f"checked against eager on a {tuple(result.sample_shape)} sample: output {tuple(result.output_shape)}, "
        f"max abs difference {result.max_abs_diff:.3g}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def bench(
    model: Annotated[str, typer.Argument(help="a preset name (random weights) or a .safetensors checkpoint")],
    backend: Annotated[str, typer.Option(help="eager, compile, onnxruntime, openvino or best")] = "eager",
    precision: Annotated[str, typer.Option(help="fp32, bf16 or int8 (int8: openvino)")] = "fp32",
    batch: Annotated[int, typer.Option(help="images per call")] = 1,
    input_size: HeightWidth = None,
    iters: Annotated[int, typer.Option(help="timed calls (median reported)")] = 20,
    accuracy: Annotated[
        int, typer.Option(help="also compare with fp32 eager on this many synthetic validation figures")
    ] = 0,
    fold: Annotated[bool, typer.Option("--fold/--no-fold", help="fold BatchNorm (no: the plain export)")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object per line")] = False,
) -> None:
    """Median latency, throughput, GFLOP/s, share of the machine's measured peak, peak memory."""
    import json

    from hourglass.deploy.bench import benchmark, format_result

    result = run_guarded(
        lambda: benchmark(model, backend, precision, batch, input_size, iters=iters, fold=fold, accuracy_num=accuracy)
    )
    if as_json:
        print(json.dumps(result.to_json()), flush=True)
    else:
        console.print(format_result(result), highlight=False, soft_wrap=True)


@app.command()
def convert(
    checkpoint: Annotated[str, typer.Argument(help="their checkpoint.pt, or a bare state dict .pt")],
    out: Annotated[str, typer.Option("--out", help="output .safetensors checkpoint")],
    source: Annotated[str, typer.Option("--from", help="where the weights come from: princeton-vl")] = "princeton-vl",
) -> None:
    """Import pretrained weights of princeton-vl/pytorch_stacked_hourglass as our checkpoint."""
    from hourglass.deploy.convert import convert_checkpoint

    path, meta = run_guarded(lambda: convert_checkpoint(source, checkpoint, out))
    spec = meta["model"]
    console.print(f"wrote {path}: {spec['name']} {spec['kwargs']}", highlight=False, soft_wrap=True)
    console.print("feed it RGB images in [0, 1], (B, 3, H, W), 256x256 crops (see docs/DEPLOY.md)", highlight=False)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point (``hourglass`` and ``python -m hourglass``)."""
    return app(args=argv if argv is not None else sys.argv[1:], prog_name="hourglass")
