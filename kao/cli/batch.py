"""The options and the batch loop every per-image command shares (`kao detect`, `kao analyze`,
`kao embed`, `kao count`): the work itself is `kao.jobs` (inputs expanded to images, each image
processed on its own so that a bad one is reported and the rest still done, an engine, results
files); this module prints text, JSON or JSON Lines, or writes `--results`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from kao.errors import KaoError
from kao.jobs.inputs import collect as collect  # kao group expands its inputs the same way
from kao.jobs.tasks import Processor, Task


def add_detector_option(parser: argparse.ArgumentParser) -> None:
    """``--detector NAME``: the YuNet network of the face detector (one of `kao.detection`'s
    MODELS), under the same name in every command."""
    from kao.detection import MODELS

    parser.add_argument(
        "--detector",
        choices=sorted(MODELS),
        default="yunet-n",
        help="detector network (default yunet-n)",
    )


def add_model_option(parser: argparse.ArgumentParser, *, collection: bool = False) -> None:
    """``--model NAME``: the face recognition model (one of `kao.recognition.embedder`'s
    RECOGNITION_MODELS), under the same name in every command that embeds faces. With
    `collection`, the default is None: the collection's own model (see `FaceDatabase`)."""
    from kao.recognition.embedder import DEFAULT_MODEL, RECOGNITION_MODELS

    default = (
        f"the collection's model, {DEFAULT_MODEL} for a new one" if collection else DEFAULT_MODEL
    )
    parser.add_argument(
        "--model",
        choices=RECOGNITION_MODELS,
        default=None if collection else DEFAULT_MODEL,
        help=f"recognition model (default: {default})",
    )


def add_threshold_options(
    parser: argparse.ArgumentParser, default: str = "the model's calibrated one"
) -> None:
    """``--threshold D`` or ``--far F`` (one of them; `default` says what applies without
    either), stored as ``args.threshold`` / ``args.far``: see
    `kao.recognition.verify.decision_threshold`."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--threshold",
        type=float,
        metavar="D",
        help=f"same person below this Euclidean distance (default: {default})",
    )
    group.add_argument(
        "--far",
        type=float,
        metavar="F",
        help="same person below the distance at which a share F of strangers would match on LFW "
        "(e.g. 1e-4; from 1e-5 to 0.1)",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` / ``--jsonl`` (one of them, default text), stored as ``args.output``: "text",
    "json" or "jsonl" (see `run_batch`)."""
    formats = parser.add_mutually_exclusive_group()
    formats.set_defaults(output="text")
    formats.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        help="print one JSON list of every image's record, once all are done",
    )
    formats.add_argument(
        "--jsonl",
        dest="output",
        action="store_const",
        const="jsonl",
        help="print JSON Lines: each image's record (its faces or its error) on one line as soon "
        "as it is done, for large folders",
    )


def check_min_score(value: float) -> float:
    """`value` of a `--min-score` option if it lies in 0-1; KaoError saying so otherwise."""
    if not 0 <= value <= 1:
        raise KaoError(f"--min-score must be between 0 and 1, got {value}")
    return value


Output = Literal["text", "json", "jsonl"]
"""How a batch prints its records (see `run_batch`)."""


def add_inputs_argument(parser: argparse.ArgumentParser) -> None:
    """The INPUT arguments of the per-image commands (see `kao.jobs.collect`)."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="an image, a folder (walked recursively), a glob pattern in quotes "
        "('photos/**/*.jpg'), a list file of image paths or URLs, one a line (.txt, .lst, "
        ".list), or a URL that pyarrow opens (file://, s3://, gs://, hdfs://, abfs://)",
    )


def add_batch_options(parser: argparse.ArgumentParser) -> None:
    """``--results FILE``, ``--engine NAME`` and ``--workers N`` of the per-image commands
    (see `run_batch`)."""
    from kao.jobs import ENGINES

    parser.add_argument(
        "--results",
        type=Path,
        metavar="FILE",
        help="write each image's record to FILE as it is done, JSON Lines (.jsonl) or Parquet "
        "(.parquet, a folder of parts; needs kao[batch]), instead of printing it; a rerun with "
        "the same FILE skips the images it holds",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="what runs the images: local (default), a process pool on this machine; ray, "
        "Ray Data with --workers actors of one CPU (and one GPU with --device cuda) each, on "
        "the cluster of --address (needs kao[ray])",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="--engine ray: the Ray cluster to join, e.g. 10.0.0.5:6379 (default: $RAY_ADDRESS, "
        "else Ray starts here for the job)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes of the local engine, each loading the models once (default 1: this "
        "process)",
    )
    add_device_option(parser)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda``: where ONNX Runtime runs the models (see
    `kao.models.runtime`). Parsing it sets `KAO_DEVICE`, so that it reaches every model this
    process loads and the worker processes it starts; `cuda` without onnxruntime's CUDA
    provider is refused at once (exit 2, naming the kao[gpu] extra)."""
    from kao.models.runtime import DEVICES

    parser.add_argument(
        "--device",
        choices=DEVICES,
        action=_DeviceAction,
        help="where the models run: auto (CUDA when onnxruntime-gpu and a GPU are there, else "
        "the CPU), cpu or cuda (needs kao[gpu]) (default: $KAO_DEVICE, else auto)",
    )


class _DeviceAction(argparse.Action):
    """Checks `--device` and sets `KAO_DEVICE` to it (see `add_device_option`)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        from kao.models.runtime import resolve_device

        try:
            resolve_device(values)
        except KaoError as error:
            raise argparse.ArgumentError(self, str(error)) from None
        os.environ["KAO_DEVICE"] = values
        setattr(namespace, self.dest, values)


def run_batch(
    inputs: list[str],
    task: Task | Processor,
    print_text: Callable[[dict[str, Any]], None],
    *,
    out: Path | None,
    output: Output,
    args: argparse.Namespace | None = None,
) -> int:
    """Process every image of `inputs` (folders, images, glob patterns, list files: see
    `kao.jobs.collect`) with `task` (a `kao.jobs.Task`, or a processor run in this process):
    each record is `{"image", "width", "height", ...fields}` (plus `"annotated"`: the copy
    written under `out`), or `{"image", "error"}` for an image that failed (its error also goes
    to stderr). With `args.results` the records go to that file (`kao.jobs.run_to_results`) and
    a summary to stdout; otherwise `output` "text" prints each record with `print_text` as it
    comes, "jsonl" prints each as one JSON line as it comes (flushed; no record is kept),
    "json" prints them all as one JSON list at the end. `args.engine` and `args.workers` choose
    the engine (default: the plain loop). Returns the exit code: 1 if any input failed, else 0."""
    from kao.jobs import Given, engine, run, run_to_results

    loadable = task if isinstance(task, Task) else Given(task)
    runner = engine(args.engine, workers=args.workers, address=args.address) if args else None
    results = args.results if args else None
    if results is not None:
        if output != "text":
            raise KaoError(f"--results writes the records to a file; drop --{output}")
        if not isinstance(loadable, Task):
            raise KaoError("--results needs a named task")
        counts = run_to_results(
            inputs, loadable, results, runner=runner, out=out, on_record=_report_error
        )
        print(
            f"{results}: {counts.written} records written ({counts.failed} failed), "
            f"{counts.skipped} images already there"
        )
        return int(counts.failed > 0)
    held: list[dict[str, Any]] = []

    def emit(record: dict[str, Any]) -> None:
        _report_error(record)
        if output == "json":
            held.append(record)
        elif output == "jsonl":
            print(json.dumps(record), flush=True)
        elif "error" not in record:
            print_text(record)

    counts = run(inputs, loadable, emit, runner=runner, out=out)
    if output == "json":
        print(json.dumps(held, indent=2))
    return int(counts.failed > 0)


def _report_error(record: dict[str, Any]) -> None:
    """Print a failed image's record on stderr."""
    if "error" in record:
        print(f"kao: error: {record['image']}: {record['error']}", file=sys.stderr)
