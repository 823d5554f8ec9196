"""Fit the age/gender head (kao/attributes/weights/age_gender_head.npz) on UTKFace training faces.

    .venv/bin/python scripts/fit_age_gender.py --data ../shared/data/utkface_train

Each face is found as on a photo (kao's detector on the image, the largest face; the whole image
when none is found), then read by the Cydral networks and the dlib descriptor
(`kao.attributes.age_gender`), as it is and mirrored; both views are training samples. The
head is a one-hidden-layer perceptron for the age (128 ReLU units, L1 loss, Adam, weight
decay, fixed seed and epochs) and L2-regularised logistic regression for the gender, its
strength chosen by 5-fold cross-validation (fixed seed, the views of a face in one fold); the
cross-validated age MAE of ridge regression on the same features is reported for comparison.
Never run it on ../shared/data/utkface: that is the evaluation set."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from kao.attributes import age_gender
from kao.evaluation.utkface import load_faces, read_features

SEED = 0
FOLDS = 5
AGE_ALPHAS = (1e-4, 1e-3)
GENDER_ALPHAS = (1e-5, 1e-4, 1e-3)
HIDDEN, EPOCHS, BATCH, LEARNING_RATE, WEIGHT_DECAY = 128, 30, 64, 1e-3, 1e-2
"""The age perceptron. 30 epochs over both views make as many Adam steps as the 60 epochs over
one view that were fitted first; 5-fold cross-validation on utkface_train gave a two-view MAE
of 5.502 years for 30 epochs against 5.589 for 60."""


def perceptron(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> list[np.ndarray]:
    """One hidden layer of HIDDEN ReLU units fitted to y (N,) by Adam on the L1 loss ->
    [w1 (D, HIDDEN), b1 (HIDDEN,), w2 (HIDDEN, 1), b2 (1,)] for standardised x (N, D)."""
    rng = np.random.default_rng(seed)
    params = [
        rng.normal(0, 1 / np.sqrt(x.shape[1]), (x.shape[1], HIDDEN)),
        np.zeros(HIDDEN),
        rng.normal(0, 1 / np.sqrt(HIDDEN), (HIDDEN, 1)),
        np.array([y.mean()]),
    ]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for start in range(0, len(order), BATCH):
            index = order[start : start + BATCH]
            hidden = np.maximum(x[index] @ params[0] + params[1], 0)
            out = (hidden @ params[2] + params[3])[:, 0]
            grad_out = np.sign(out - y[index])[:, None] / len(index)
            grad_hidden = grad_out @ params[2].T * (hidden > 0)
            grads = [
                x[index].T @ grad_hidden + WEIGHT_DECAY * params[0],
                grad_hidden.sum(axis=0),
                hidden.T @ grad_out + WEIGHT_DECAY * params[2],
                grad_out.sum(axis=0),
            ]
            step += 1
            for k, grad in enumerate(grads):
                first[k] = 0.9 * first[k] + 0.1 * grad
                second[k] = 0.999 * second[k] + 0.001 * grad**2
                corrected = first[k] / (1 - 0.9**step)
                params[k] -= (
                    LEARNING_RATE * corrected / (np.sqrt(second[k] / (1 - 0.999**step)) + 1e-8)
                )
    return params


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge regression of y (N,) on x (N, D) with an unpenalised intercept -> (w, b)."""
    mean_x, mean_y = x.mean(axis=0), y.mean()
    xc = x - mean_x
    w = np.linalg.solve(xc.T @ xc + alpha * len(x) * np.eye(x.shape[1]), xc.T @ (y - mean_y))
    return w, float(mean_y - mean_x @ w)


def logistic(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression (labels 0/1) by Newton's method -> (w, b)."""
    design = np.hstack([x, np.ones((len(x), 1))])
    theta = np.zeros(design.shape[1])
    penalty = alpha * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-design @ theta))
        gradient = design.T @ (p - y) / len(x) + penalty @ theta
        hessian = (design * (p * (1 - p))[:, None]).T @ design / len(x) + penalty
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def cross_validate(x, y, alphas, fit, score, views) -> tuple[float, dict[str, float]]:
    """The alpha of `alphas` with the best mean `score` over FOLDS folds (higher is better);
    the `views` consecutive rows of one face stay in one fold."""
    faces = len(x) // views
    folds = np.repeat(np.random.default_rng(SEED).permutation(faces) % FOLDS, views)
    scores = {}
    for alpha in alphas:
        values = []
        for k in range(FOLDS):
            train, test = folds != k, folds == k
            w, b = fit(x[train], y[train], alpha)
            values.append(score(x[test] @ w + b, y[test]))
        scores[str(alpha)] = float(np.mean(values))
    best = max(alphas, key=lambda a: scores[str(a)])
    return best, scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="UTKFace training folder")
    parser.add_argument("--out", type=Path, default=age_gender.HEAD)
    parser.add_argument("--features", type=Path, help="cache of the features (.npz)")
    args = parser.parse_args()
    if args.data.resolve().name == "utkface":
        print("refusing to fit on the UTKFace evaluation set", file=sys.stderr)
        return 2
    faces, skipped = load_faces(args.data)
    if args.features and args.features.exists():
        with np.load(args.features) as data:
            reading = age_gender.Reading(data["embeddings"], data["age_p"], data["male_p"])
    else:
        reading, _ = read_features(faces, cropped=False)
        if args.features:
            np.savez(args.features, **vars(reading))
    views = reading.male_p.shape[1]
    flat = reading.flat()
    embeddings, age_p, male_p = flat.embeddings, flat.age_p, flat.male_p
    ages = np.repeat([face.age for face in faces], views).astype(np.float64)
    male = np.repeat([face.gender == "male" for face in faces], views).astype(np.float64)

    x_age = age_gender.age_features(embeddings, age_p).astype(np.float64)
    _, ridge_cv = cross_validate(
        x_age,
        ages,
        AGE_ALPHAS,
        ridge,
        lambda pred, y: -np.abs(np.clip(pred, 0, 100) - y).mean(),
        views,
    )
    age_mean, age_scale = x_age.mean(axis=0), x_age.std(axis=0) + 1e-6
    x_age = (x_age - age_mean) / age_scale
    x_gender = age_gender.gender_features(embeddings, age_p, male_p).astype(np.float64)
    gender_alpha, gender_cv = cross_validate(
        x_gender,
        male,
        GENDER_ALPHAS,
        logistic,
        lambda z, y: ((z > 0) == (y > 0.5)).mean(),
        views,
    )
    w1, b1, w2, b2 = perceptron(x_age, ages)
    gender_w, gender_b = logistic(x_gender, male, gender_alpha)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "age_mean": age_mean,
        "age_scale": age_scale,
        "age_w1": w1,
        "age_b1": b1,
        "age_w2": w2,
        "age_b2": b2,
        "gender_w": gender_w,
        "gender_b": np.array([gender_b]),
    }
    np.savez(args.out, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
    report = {
        "faces": len(faces),
        "skipped_files": skipped,
        "age_cv_mae_ridge": {k: round(-v, 3) for k, v in ridge_cv.items()},
        "gender_alpha": gender_alpha,
        "gender_cv_accuracy": {k: round(v, 4) for k, v in gender_cv.items()},
        "out": str(args.out),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
