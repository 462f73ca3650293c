"""Command-line interface: parses arguments, calls training, evaluation and inference, prints; no logic of its own.

Expected errors (:class:`~hourglass.errors.HourglassError`: bad files, bad settings; and ``OSError``) print
one line to stderr and exit with status 1 or 2, without a traceback; any other exception is a bug and keeps
its traceback.
"""

from __future__ import annotations

import io
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from typer.core import TyperCommand

from hourglass.errors import ConfigError, DataError, HourglassError
from hourglass.metrics.mpii import PCKH_COLUMNS

if TYPE_CHECKING:
    from pathlib import Path

    from hourglass.evaluation.evaluate import EvalResult
    from hourglass.inference.bench import BenchResult

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

CHECKPOINT_HELP = "a .safetensors checkpoint, a name from `hourglass weights list`, or an http(s)/file URL"
BACKEND_HELP = (
    "auto (the fastest installed with a negligible accuracy cost), eager, compile, onnxruntime, openvino, best"
)
PRECISION_HELP = "auto, fp32, bf16 or int8 (int8: openvino); eager fp32 is the reference"

SIZE_OPTION = "--input-size"
IMAGE_SIZE_OPTION = "--image-size"
InputSize = Annotated[
    list[str] | None,
    typer.Option(
        SIZE_OPTION,
        metavar="[C] H W",
        help="H W of one input, or C H W with C the model's channels (default: 3 256 256, or C 64 64 for a lone "
        "hourglass)",
    ),
]
HeightWidth = Annotated[
    list[str] | None,
    typer.Option(
        SIZE_OPTION,
        metavar="[C] H W",
        help="H W of the input, or C H W with C the model's channels (3 for images); default: the checkpoint's",
    ),
]


class SizedCommand(TyperCommand):
    """A command whose ``--input-size`` takes ``H W`` or ``C H W`` (``synth``'s ``--image-size``: ``H W``): click
    gives an option a fixed count of values, so the numbers that follow the option are handed to click as one
    option each (see :func:`spread_sizes`), the command reads them with :func:`size_numbers`, and the library
    checks their count, so that a wrong count is one line."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        for option in (SIZE_OPTION, IMAGE_SIZE_OPTION):
            args = spread_sizes(args, option)
        return super().parse_args(ctx, args)


def spread_sizes(args: list[str], option: str = SIZE_OPTION) -> list[str]:
    """``[..., "--input-size", "3", "64", "64", ...]`` -> ``[..., "--input-size", "3", "--input-size", "64", ...]``.

    The whole numbers right after ``option`` are its values. With none (the option last, or followed by
    another option) it is given an empty value, so that the count check reports it in one line; a value
    that is not a whole number is left to follow the option, for :func:`size_numbers` to refuse.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            out += args[i - 1 :]
            break
        if arg != option:
            out.append(arg)
            continue
        numbers = []
        while i < len(args) and re.fullmatch(r"[0-9]+", args[i]):
            numbers.append(args[i])
            i += 1
        if numbers:
            out += [word for n in numbers for word in (option, n)]
        elif i < len(args) and not args[i].startswith("-"):
            out.append(option)
        else:
            out.append(f"{option}=")
    return out


def size_numbers(values: list[str] | None, option: str = SIZE_OPTION) -> tuple[int, ...] | None:
    """The numbers given to ``option`` (None when it was not given); the library checks their count
    (:func:`hourglass.models.summary.image_size`, :func:`hourglass.synthetic.figures.write_synthetic`).

    Raises:
        ConfigError: a value that is not a whole number.
    """
    if not values:
        return None
    words = [w for v in values for w in v.split()]
    if not all(re.fullmatch(r"[0-9]+", w) for w in words):
        forms = "H W or C H W" if option == SIZE_OPTION else "H W"
        raise ConfigError(f"{option} {' '.join(values)}: expected whole numbers, {forms}")
    return tuple(int(w) for w in words)


def run_guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; expected errors become one message and exit status 1, warnings one line each.

    Expected means :class:`~hourglass.errors.HourglassError` (bad data, settings, checkpoints, inputs) and
    ``OSError`` (a file that cannot be read or written). Any other exception is a bug: it keeps its traceback.
    A warning (``warnings.warn``: data the library worked around, such as a COCO file without ``area``) prints
    as ``warning: <message>`` on stderr, without Python's file, line and source line.
    """
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return fn()
        except (HourglassError, OSError) as err:
            err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None


def _show_warning(message: Warning | str, *args: Any, **kwargs: Any) -> None:
    """``warnings.showwarning`` for the command line: the message alone, one line on stderr."""
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def _print_version(value: bool) -> None:
    """``--version``: the installed distribution's name and version (its metadata), then exit."""
    if value:
        from hourglass import DISTRIBUTION, __version__

        typer.echo(f"{DISTRIBUTION} {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Stacked Hourglass Networks for 2D keypoint estimation."""


# --- display: tables and result lines (the only display code of the package) ---------------------------


def result_table(result: EvalResult, width: int | None = None) -> Table:
    """A rich table of :func:`evaluate`'s scores: a row per score set (e.g. PCKh@0.5) and a column per joint
    group, or a row per joint when that would not fit ``width`` (:func:`score_table`)."""
    notes = []
    if result.skipped:
        notes.append(f"{result.skipped} unreadable records")
    if result.unscored:
        notes.append(f"{result.unscored} people without a torso, not scored")
    return score_table(result.table, f"{result.kind} ({'; '.join(notes)})" if notes else result.kind, width)


def pckh_table(scores: dict[str, float], title: str, width: int | None = None) -> Table:
    """A rich table of ``hourglass eval-mpii``'s scores, one column per body part (or one row each)."""
    return score_table({"": {c: scores[c] for c in (*PCKH_COLUMNS, "Mean@0.1") if c in scores}}, title, width)


def score_table(
    rows: Mapping[str, Mapping[str, float]],
    title: str | None = None,
    width: int | None = None,
    digits: int = 2,
) -> Table:
    """A rich table of ``rows`` (score set -> column -> value), as wide as fits ``width``, else transposed.

    Args:
        rows: e.g. ``{"PCKh@0.5": {"Head": 97.1, ..., "Total": 90.2}, "PCKh@0.1": {"Total": 40.3}}``;
            a column missing from a row is left blank. A single set named ``""`` gets no name column.
        title: the table's title.
        width: the terminal's width in characters (default: that of the terminal, else 80).
        digits: decimals shown.

    Returns:
        One row per score set and one column per joint when that table fits ``width`` without wrapping
        or truncating a cell; otherwise one row per joint and one column per score set.
    """
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    width = width or shutil.get_terminal_size((80, 24)).columns

    def cell(row: Mapping[str, float], column: str) -> str:
        return f"{row[column]:.{digits}f}" if column in row else ""

    named = list(rows) != [""]
    wide = _table(title, columns, [(name, [cell(row, c) for c in columns]) for name, row in rows.items()], named)
    if natural_width(wide) <= width:
        return wide
    return _table(title, list(rows), [(c, [cell(row, c) for row in rows.values()]) for c in columns])


def natural_width(table: Table) -> int:
    """Characters ``table`` takes when no cell is wrapped or cut."""
    console = Console(file=io.StringIO(), width=1_000_000)
    return Measurement.get(console, console.options, table).maximum


def _table(title: str | None, columns: list[str], rows: list[tuple[str, list[str]]], named: bool = True) -> Table:
    """A table with ``columns`` (right-aligned numbers), after a first column of row names when ``named``."""
    table = Table(title=title)
    if named:
        table.add_column("")
    for c in columns:
        table.add_column(c, justify="right")
    for name, cells in rows:
        table.add_row(*([name] if named else []), *cells)
    return table


def format_result(r: BenchResult) -> str:
    """Human-readable lines for one benchmark row."""
    lines = [
        f"{r.model}: {r.backend} {r.precision}"
        + (f" (picked by --backend {r.requested_backend})" if r.requested_backend != r.backend else "")
        + f", batch {r.batch}, {r.input_size[0]}x{r.input_size[1]}, BatchNorm {'folded' if r.fold else 'kept'}",
        f"  latency   {r.latency_ms:.2f} ms median (min {r.latency_min_ms:.2f}, p10 {r.latency_p10_ms:.2f}, "
        f"p90 {r.latency_p90_ms:.2f})",
        f"  throughput {r.throughput:.2f} images/s",
        f"  compute   {r.gflops:.1f} GFLOP/s ({2 * r.gmacs:.2f} GFLOP per call)",
    ]
    if r.peak_gflops:
        lines.append(f"  peak      {r.peak.describe()}; share {100 * r.peak_share:.1f}%")
    lines.append(f"  memory    {r.peak_rss_mib:.0f} MiB peak RSS (process); build {r.build_s:.1f} s")
    lines.append(f"  machine   {r.cpu}, {r.threads} threads")
    if r.accuracy:
        a = r.accuracy
        lines.append(
            f"  accuracy  PCKh@0.5 (official, 14 joints) {a['pckh']:.2f} vs fp32 eager {a['pckh_reference']:.2f} "
            f"({a['pckh_diff']:+.2f} points); {100 * a['within_1px']:.1f}% of keypoints within 1 heatmap px "
            f"({a['instances']} validation figures)"
        )
    return "\n".join(lines)


@app.command(cls=SizedCommand)
def summary(
    model: Annotated[str, typer.Argument(help="a name from `hourglass list-models`")],
    input_size: InputSize = None,
    depth: Annotated[int, typer.Option(help="nesting depth of the layer table")] = 3,
) -> None:
    """Layer table with output shapes and parameters (torchinfo), total parameters and multiply-adds."""
    from hourglass.models import create_model
    from hourglass.models.summary import input_shape, summarize

    def go() -> None:
        net = create_model(model)
        s = summarize(net, input_shape(net, size_numbers(input_size)), depth=depth)
        console.print(s.table, highlight=False, soft_wrap=True)
        console.print(f"Input size: {' x '.join(map(str, s.input_size))}")
        console.print(f"Total parameters: {s.parameters:,}")
        console.print(f"Multiply-adds (torch.utils.flop_counter, convolutions): {s.macs / 1e9:.2f} G")

    run_guarded(go)


@app.command(cls=SizedCommand)
def probe(
    model: Annotated[str, typer.Argument(help="a name from `hourglass list-models`")],
    layer: Annotated[list[str], typer.Option("--layer", help="dotted layer name, repeatable")],
    input_size: InputSize = None,
) -> None:
    """Run one forward pass with hooks and print each named layer's output shape."""
    from hourglass.models import create_model
    from hourglass.models.summary import input_shape
    from hourglass.models.summary import probe as probe_layers

    def go() -> None:
        net = create_model(model)
        shapes = probe_layers(net, layer, input_shape(net, size_numbers(input_size)))
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
    config: Annotated[
        str, typer.Option(help="the demo recipe (a shipped recipe name or a YAML file)")
    ] = "synthetic-hg1",
    overrides: Annotated[list[str] | None, typer.Option("--set", help="key=value override, repeatable")] = None,
    num_train: Annotated[int, typer.Option(help="synthetic training images")] = 4000,
    num_val: Annotated[int, typer.Option(help="synthetic held-out images")] = 500,
) -> None:
    """The main job: synthesise figures, train a small hourglass on the CPU (1,500 steps), show it learnt.

    The demo owns its train.out_dir (runs/demo): each run replaces the previous demo's data and outputs there.
    """
    from hourglass.config import load_config
    from hourglass.demo import run_demo

    def go() -> None:
        cfg = load_config(config, overrides)
        m = run_demo(cfg, num_train=num_train, num_val=num_val, log=lambda s: console.print(s, highlight=False))
        if m is None:
            raise typer.Exit(130)
        console.print(
            f"PCKh@0.5 on {m['held_out_images']} held-out figures: untrained {m['untrained_pckh']:.1f}% -> "
            f"trained {m['trained_pckh']:.1f}% ({m['steps']} steps, {m['train_seconds']:.0f} s of training); "
            f"target {m['target_pckh']:.0f}% on {m['cores']} core(s): "
            + ("met" if m["target_met"] else f"not met: {m['shortfall']}")
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

    from hourglass.evaluation.evaluate import evaluate_mpii_files

    def go() -> None:
        scores = evaluate_mpii_files(preds, gt, protocol, threshold)
        if as_json:
            print(json.dumps(scores))
        else:
            console.print(pckh_table(scores, f"PCKh@{threshold:g} ({protocol}) of {preds}", console.width))

    run_guarded(go)


@app.command(cls=SizedCommand)
def synth(
    out: Annotated[str, typer.Option("--out", help="folder to create (images/ and annotations, or the videos)")],
    num: Annotated[
        int | None, typer.Option("--num", help="number of images, one figure each (--video: frames of each video)")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="coco or mpii")] = "coco",
    seed: Annotated[int, typer.Option("--seed", help="figure seed")] = 0,
    image_size: Annotated[
        list[str] | None,
        typer.Option(IMAGE_SIZE_OPTION, metavar="H W", help="H W of each image (default 128 128; --video 270 480)"),
    ] = None,
    image_format: Annotated[str, typer.Option("--image-format", help="png or jpg")] = "png",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing folder")] = False,
    video: Annotated[
        bool, typer.Option("--video", help="walking figures with identities: leave-arrive, occlusion, side-by-side")
    ] = False,
) -> None:
    """Write synthetic figures (MPII_16 joints) as real image files with COCO or MPII annotations, or videos."""
    if video:
        from hourglass.synthetic.video import VIDEO_SCENARIOS, VIDEO_SIZE, write_synthetic_video

        def video_go() -> Path:
            size = size_numbers(image_size, IMAGE_SIZE_OPTION) or VIDEO_SIZE
            return write_synthetic_video(out, seed=seed, size=size, num_frames=num, overwrite=overwrite)

        path = run_guarded(video_go)
        names = ", ".join(f"{s}.mp4" for s in VIDEO_SCENARIOS)
        console.print(f"wrote {names} with their .truth.json and .boxes.json to {path}", highlight=False)
        return
    from hourglass.synthetic.figures import write_synthetic

    def go() -> Path:
        if num is None:
            raise DataError("synth: --num is required (the number of images)")
        size = size_numbers(image_size, IMAGE_SIZE_OPTION)
        return write_synthetic(out, num, format, seed, (128, 128) if size is None else size, image_format, overwrite)

    path = run_guarded(go)
    console.print(f"wrote {num} images and {format} annotations to {path}", highlight=False)


@app.command()
def train(
    config: Annotated[
        str, typer.Option(help="a shipped recipe (mpii-hg2, mpii-hg8, coco-hg2, synthetic-hg1) or a YAML file")
    ],
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="dotted key=value override, e.g. optim.lr=1e-3; repeatable")
    ] = None,
    resume: Annotated[str | None, typer.Option(help="last.safetensors of a run to continue")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="start afresh in a train.out_dir that already holds a run")
    ] = False,
) -> None:
    """Train a model (one process, or one per GPU/CPU group under torchrun).

    A train.out_dir that already holds a run is refused unless --resume continues it or --overwrite replaces it.
    """
    from hourglass.config import load_config
    from hourglass.training.loop import train as train_run

    def go() -> None:
        result = train_run(load_config(config, overrides), resume=resume, overwrite=overwrite)
        if result.status == "interrupted":
            raise typer.Exit(130)

    run_guarded(go)


@app.command("eval")
def eval_cmd(
    config: Annotated[str, typer.Option(help="recipe (shipped name or YAML file) whose data.val split is scored")],
    checkpoint: Annotated[str, typer.Option(help=CHECKPOINT_HELP)],
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="flip test (average with the mirrored crop)")] = True,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="key=value override, repeatable")] = None,
    json_out: Annotated[str | None, typer.Option("--json", help="where to write the scores")] = None,
) -> None:
    """Score a checkpoint on the validation split: PCKh (MPII-style), COCO OKS AP, LSP's torso PCK@0.2, or PCK@0.2."""
    from hourglass.config import load_config
    from hourglass.evaluation.evaluate import evaluate

    def go() -> None:
        result = evaluate(load_config(config, overrides), checkpoint, flip=flip, out_json=json_out)
        console.print(result_table(result, console.width))
        console.print(f"scores written to {result.json_path}")

    run_guarded(go)


@app.command()
def predict(
    checkpoint: Annotated[str, typer.Option("--checkpoint", help=CHECKPOINT_HELP)],
    inputs: Annotated[
        list[str] | None,
        typer.Argument(help="PNG/JPEG files, videos (mp4, avi, mov ...) or folders of them", metavar="[INPUT]..."),
    ] = None,
    boxes: Annotated[str | None, typer.Option("--boxes", help="COCO detection results JSON, one person a box")] = None,
    detector: Annotated[
        str | None,
        typer.Option(
            "--detector",
            help="find the people with a published detector: default (yolox-m-person), yolox-x-person, "
            "rtmdet-nano-person",
        ),
    ] = None,
    detector_weights: Annotated[
        str | None, typer.Option("--detector-weights", help="find the people with this ONNX detector file")
    ] = None,
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
    backend: Annotated[str, typer.Option("--backend", help=BACKEND_HELP)] = "auto",
    precision: Annotated[str, typer.Option("--precision", help=PRECISION_HELP)] = "auto",
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N (eager and compile)")] = "cpu",
    detect_every: Annotated[
        int, typer.Option("--detect-every", help="videos: boxes on every N-th frame only, from the poses between")
    ] = 1,
    track_patience: Annotated[
        int | None, typer.Option("--track-patience", help="videos: frames a person may go unseen and keep their id")
    ] = None,
    smooth: Annotated[bool, typer.Option("--smooth", help="videos: One Euro filter on each person's joints")] = False,
    overlay: Annotated[
        bool, typer.Option("--overlay/--no-overlay", help="videos: write the overlay video (else keypoints only)")
    ] = True,
) -> None:
    """Keypoints of the people in images, videos and camera frames: COCO results JSON and overlays under --out."""
    from pathlib import Path

    from hourglass.predict import predict_files

    def detector_given() -> Any:
        if detector is not None and detector_weights is not None:
            raise ConfigError("--detector and --detector-weights both name the detector: give one")
        return Path(detector_weights) if detector_weights is not None else detector

    people = run_guarded(detector_given)

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
            detector=people,
            detect_every=detect_every,
            track_patience=track_patience,
            smooth=smooth,
            overlay=overlay,
            announce=lambda line: console.print(line, highlight=False, soft_wrap=True),
        )
    )
    for note in report.notes:
        err_console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    for failure in report.failures:
        err_console.print(f"[bold red]error:[/] {escape(failure)}", highlight=False, soft_wrap=True)
    if boxes is not None or people is not None:
        console.print(
            f"boxes: {report.boxes_read} {'for these inputs' if people is None else 'detected'}, "
            f"{report.boxes_low_score} scoring <= {box_threshold:g} "
            f"and {report.boxes_overlapping} overlapping a better one (IoU > {nms_threshold:g}) dropped",
            highlight=False,
            soft_wrap=True,  # one line, however narrow the terminal (rich would break it at its width)
        )
    done = f"{report.people} people in {report.images} images"
    if report.videos or report.frames or report.broken_frames:
        done += f" and {report.frames} frames of {report.videos} videos"
        done += f" ({report.broken_frames} broken frames skipped)" if report.broken_frames else ""
    results = report.results_files
    if results:
        others = len(report.written) - len(results)
        done += " -> " + ", ".join(map(str, results))
        done += f" and {others} more files in {results[0].parent}" if others else ""
    else:
        done += ": nothing written"
    console.print(escape(done), highlight=False, soft_wrap=True)
    if report.failures:
        raise typer.Exit(1)


@app.command(cls=SizedCommand)
def export(
    checkpoint: Annotated[str, typer.Option("--checkpoint", help=CHECKPOINT_HELP)],
    format: Annotated[str, typer.Option("--format", help="onnx, openvino or torchscript")],
    out: Annotated[str, typer.Option("--out", help="output file (.onnx, .xml with .bin beside it, .pt)")],
    input_size: HeightWidth = None,
    all_stacks: Annotated[bool, typer.Option("--all-stacks", help="output every stack's heatmaps")] = False,
    fold: Annotated[bool, typer.Option("--fold/--no-fold", help="fold BatchNorm into convolutions")] = True,
) -> None:
    """Export a checkpoint (dynamic batch), check it against eager PyTorch and print the max difference."""
    from hourglass.inference.export import export_checkpoint

    result = run_guarded(lambda: export_checkpoint(checkpoint, format, out, size_numbers(input_size), all_stacks, fold))
    console.print(f"wrote {', '.join(map(str, result.files))}", highlight=False, soft_wrap=True)
    console.print(
        f"checked against eager on a {tuple(result.sample_shape)} sample: output {tuple(result.output_shape)}, "
        f"max abs difference {result.max_abs_diff:.3g}",
        highlight=False,
        soft_wrap=True,
    )


@app.command(cls=SizedCommand)
def bench(
    model: Annotated[
        str,
        typer.Argument(
            help="a preset name (random weights), a .safetensors checkpoint, published weights (`hourglass weights "
            "list`; a preset of the same name wins) or a URL (--train: a preset)"
        ),
    ],
    backend: Annotated[str, typer.Option(help="eager, compile, onnxruntime, openvino or best")] = "eager",
    precision: Annotated[str, typer.Option(help="fp32, bf16 or int8 (int8: openvino)")] = "fp32",
    batch: Annotated[int | None, typer.Option(help="images per call (default 1; --train: train.batch_size)")] = None,
    input_size: HeightWidth = None,
    iters: Annotated[int, typer.Option(help="timed calls (median reported)")] = 20,
    accuracy: Annotated[
        int, typer.Option(help="also compare with fp32 eager on this many synthetic validation figures")
    ] = 0,
    fold: Annotated[bool, typer.Option("--fold/--no-fold", help="fold BatchNorm (no: the plain export)")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object per line")] = False,
    train: Annotated[
        bool, typer.Option("--train", help="time the training step of `hourglass train` instead of inference")
    ] = False,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="--train: model keyword (num_channels=128) or dotted config key (train.step=...)"),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            help="--train: a recipe whose model kwargs, input size, batch, optim and train settings are used "
            "(MODEL names the preset; --set and --batch/--input-size override)"
        ),
    ] = None,
) -> None:
    """Median latency, throughput, GFLOP/s, share of the machine's measured peak, peak memory.

    With --train: samples/s, ms per step, GFLOP/s and peak share of the training step `hourglass train` runs.
    """
    import json

    from hourglass.inference.bench import benchmark

    if train:
        from hourglass.config import load_config
        from hourglass.training.train_bench import benchmark_training, format_train_result

        sets = [f"model.name={model}"] + [
            s if "." in s.partition("=")[0] else f"model.kwargs.{s}" for s in overrides or []
        ]
        row = run_guarded(
            lambda: benchmark_training(load_config(config, sets), batch, size_numbers(input_size), iters=iters)
        )
        if as_json:
            print(json.dumps(row.to_json()), flush=True)
        else:
            console.print(format_train_result(row), highlight=False, soft_wrap=True)
        return
    if overrides or config:
        err_console.print("[bold red]error:[/] --set and --config apply to bench --train only", highlight=False)
        raise typer.Exit(2)
    result = run_guarded(
        lambda: benchmark(
            model,
            backend,
            precision,
            batch or 1,
            size_numbers(input_size),
            iters=iters,
            fold=fold,
            accuracy_num=accuracy,
        )
    )
    if as_json:
        print(json.dumps(result.to_json()), flush=True)
    else:
        console.print(format_result(result), highlight=False, soft_wrap=True)


@app.command()
def convert(
    checkpoint: Annotated[
        str,
        typer.Argument(
            help="the published weights: .pth/.pth.tar/.pt or a Torch7 .t7, a name from `hourglass weights list`, "
            "or an http(s)/file URL"
        ),
    ],
    out: Annotated[str, typer.Option("--out", help="output .safetensors checkpoint")],
    source: Annotated[
        str, typer.Option("--from", help="bearpaw, princeton-vl, torch7, or auto (tell from the file)")
    ] = "auto",
) -> None:
    """Import published Stacked Hourglass weights (bearpaw, princeton-vl, Newell's Torch7) as our checkpoint."""
    from hourglass.checkpoint.convert import convert_checkpoint
    from hourglass.checkpoint.hub import source_file

    path, meta = run_guarded(lambda: convert_checkpoint(source, source_file(checkpoint), out))
    console.print(f"wrote {path}: {meta.model} {meta.model_kwargs}", highlight=False, soft_wrap=True)
    console.print(
        "feed it RGB images in [0, 1], (B, 3, H, W), 256x256 crops; any input normalisation its family expects "
        "is part of the converted model (see docs/CHECKPOINTS.md)",
        highlight=False,
        soft_wrap=True,
    )


weights_app = typer.Typer(
    help="Published weights: list them, fetch and convert them ahead of time, show where they are cached.",
    no_args_is_help=True,
)
app.add_typer(weights_app, name="weights")


@weights_app.command("list")
def weights_list(
    as_json: Annotated[bool, typer.Option("--json", help="print every field of every row as one JSON list")] = False,
) -> None:
    """The table of published weights, with what is in the cache ($HOURGLASS_HOME)."""
    import json

    from hourglass.checkpoint.hub import cache_dir, describe

    rows = run_guarded(describe)
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title=f"published weights (cache: {cache_dir()})")
    cells = []
    for row in rows:
        figures = row.get("figures") or []
        published = "; ".join(f"{f['metric']} {f['value']:g} ({f['split']})" for f in figures[:1]) or "-"
        check = row.get("hash")
        hash_text = "none" if check in (None, "none") else ", ".join(f"{k} {v}" for k, v in check.items())
        cached = "checkpoint" if row["cached_checkpoint"] else "file" if row["cached_file"] else "-"
        builds = row.get("preset") or row.get("family", "")
        cells.append((row["name"], row["kind"], builds, published, hash_text, cached))
    # names are what users type, and a name, kind or model cut short says nothing: those three are never cut,
    # however narrow the terminal (the rest wrap, a hash anywhere)
    for i, column in enumerate(("name", "kind", "builds", "published", "hash", "cached")):
        if i < 3:
            table.add_column(column, no_wrap=True, min_width=max((len(c[i]) for c in cells), default=len(column)))
        else:
            table.add_column(column, overflow="fold" if column == "hash" else "ellipsis")
    for c in cells:
        table.add_row(*c)
    console.print(table)


@weights_app.command("get")
def weights_get(
    source: Annotated[str, typer.Argument(help="a name from `hourglass weights list`, or an http(s)/file URL")],
    raw: Annotated[bool, typer.Option("--raw", help="fetch the file only, do not convert it")] = False,
    member: Annotated[str | None, typer.Option("--member", help="the file to take out of a .zip")] = None,
) -> None:
    """Fetch (and for pose weights, convert) ahead of time, for a machine that will be offline; prints the path."""
    from hourglass.checkpoint.hub import fetch, parse_source, resolve_checkpoint

    def go() -> Any:
        row = parse_source(source).row
        if raw or member is not None or (row is not None and row.kind != "pose"):
            return fetch(source, member)
        return resolve_checkpoint(source)

    typer.echo(str(run_guarded(go)))


@weights_app.command("path")
def weights_path(
    source: Annotated[str, typer.Argument(help="a name from `hourglass weights list`, or an http(s)/file URL")],
    converted: Annotated[
        bool, typer.Option("--converted", help="the converted .safetensors instead of the file as fetched")
    ] = False,
) -> None:
    """Where the file of NAME is, or would go, in the cache (put a copy fetched by other means there)."""
    from hourglass.checkpoint.hub import converted_path, download_path

    path = run_guarded(lambda: converted_path(source) if converted else download_path(source))
    typer.echo(str(path))


data_app = typer.Typer(
    help="Published data sets (LSP, LSPet): list them, fetch, check and unpack them into the cache, show where.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
DataName = Annotated[str, typer.Argument(help="a name from `hourglass data list`")]


@data_app.command("list")
def data_list(
    as_json: Annotated[bool, typer.Option("--json", help="print every field of every row as one JSON list")] = False,
) -> None:
    """The table of published data sets, with what is in the cache ($HOURGLASS_HOME)."""
    import json

    from hourglass.checkpoint.datasets import data_table, describe_datasets
    from hourglass.checkpoint.hub import cache_dir

    rows = run_guarded(describe_datasets)
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title=f"published data sets (cache: {cache_dir()})")
    cells = []
    for row in rows:
        typed = data_table()[row["name"]]
        here = "unpacked" if row["unpacked"] else "archive" if row["cached_archive"] else "-"
        hash_text = "none published" if typed.hash is None else f"{typed.hash[0]} {typed.hash[1]}"
        annotations = f"{typed.annotations} {'x'.join(map(str, typed.shape))}"
        cells.append((typed.name, f"{typed.count:,}", annotations, typed.url or "-", hash_text, here))
    # the names to type are never cut, however narrow the terminal (the rest wrap, a URL anywhere)
    for i, column in enumerate(("name", "images", "annotations", "archive", "hash", "here")):
        if i == 0:
            table.add_column(column, no_wrap=True, min_width=max((len(c[0]) for c in cells), default=len(column)))
        else:
            table.add_column(column, overflow="fold")
    for c in cells:
        table.add_row(*c)
    console.print(table)


@data_app.command("get")
def data_get(
    name: DataName,
    force: Annotated[bool, typer.Option("--force", help="unpack it again, over the folder there")] = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="take the archive from here instead (a copy: http(s)://, file:// or a file), checked alike"
        ),
    ] = None,
) -> None:
    """Fetch a data set's official archive, check it and unpack it into the cache; prints the folder."""
    from hourglass.checkpoint.datasets import get_dataset

    got = run_guarded(lambda: get_dataset(name, url=url, force=force))
    row = got.row
    what = f"{row.name}: {row.count:,} images and {row.annotations} {row.shape}"
    said = f"unpacked into {got.path}" if got.fresh else f"already unpacked in {got.path} (--force unpacks it again)"
    err_console.print(escape(f"{what} {said}"), highlight=False, soft_wrap=True)
    if got.recipe:
        err_console.print(
            escape(f"recipe settings: {' '.join(f'--set {s}' for s in got.recipe)}\n  ({row.recipe_note})"),
            highlight=False,
            soft_wrap=True,
        )
    typer.echo(str(got.path))


@data_app.command("path")
def data_path(
    name: DataName,
    archive: Annotated[
        bool, typer.Option("--archive", help="the archive's place in the cache (put a copy fetched by other means)")
    ] = False,
) -> None:
    """Where data set NAME is unpacked, or would be."""
    from hourglass.checkpoint.datasets import archive_path, data_dir

    typer.echo(str(run_guarded(lambda: archive_path(name) if archive else data_dir(name))))


@app.command()
def serve(
    checkpoint: Annotated[str, typer.Option("--checkpoint", help=CHECKPOINT_HELP)],
    detector: Annotated[
        str | None, typer.Option("--detector", help="person detector for pictures sent without boxes")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="address to bind (0.0.0.0: every interface)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    backend: Annotated[str, typer.Option("--backend", help=BACKEND_HELP)] = "auto",
    precision: Annotated[str, typer.Option("--precision", help=PRECISION_HELP)] = "auto",
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N (eager and compile)")] = "cpu",
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="flip test unless a request says otherwise")] = True,
    max_batch: Annotated[int, typer.Option("--max-batch", help="most person crops in one network call")] = 8,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", help="longest wait for a batch to fill after its first crop")
    ] = 5.0,
    max_queue: Annotated[
        int, typer.Option("--max-queue", help="most crops waiting or running; more gets 503 + Retry-After")
    ] = 64,
    timeout_ms: Annotated[float, typer.Option("--timeout-ms", help="a request's time limit (504 past it)")] = 30000.0,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", help="largest request body (413 over it)")] = 20.0,
    max_pixels: Annotated[
        int, typer.Option("--max-pixels", help="largest picture, width x height (413 over it, not decoded)")
    ] = 50_000_000,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="HOURGLASS_API_KEY", help="require Authorization: Bearer KEY (not /healthz)"),
    ] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option("--cors-origin", help="an origin browsers may call from (repeat; none: closed)")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="processes behind the port, each with the model")] = 1,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's: warning, info, debug")] = "info",
) -> None:
    """Serve a checkpoint over HTTP: POST /v1/predict, a WebSocket stream, /metrics and a web page at /."""

    def go() -> None:
        from hourglass.serve.app import serve
        from hourglass.serve.service import ServeSettings

        settings = ServeSettings(
            checkpoint=checkpoint,
            detector=detector,
            backend=backend,
            precision=precision,
            device=device,
            flip=flip,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
            timeout_ms=timeout_ms,
            max_body_bytes=int(max_body_mb * 2**20),
            max_pixels=max_pixels,
            api_key=api_key,
            cors_origins=tuple(cors_origin or ()),
            workers=workers,
        )
        serve(settings, host, port, log_level, announce=lambda line: console.print(line, highlight=False))

    run_guarded(go)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point (``hourglass`` and ``python -m hourglass``)."""
    return app(args=argv if argv is not None else sys.argv[1:], prog_name="hourglass")
