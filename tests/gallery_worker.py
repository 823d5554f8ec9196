"""A separate process writing to a gallery, for the multi-process tests of test_gallery.py.

python tests/gallery_worker.py enrol URL COLLECTION WORKER CALLS
    CALLS add_faces calls of 2 faces each, for persons "w<WORKER>-<i % 5>"; prints every
    new face id as one JSON list.
python tests/gallery_worker.py hang URL COLLECTION
    commits 3 faces of person "before" and prints their ids (a JSON list), then adds 20 faces
    of person "victim" and, inside that transaction right before its commit, prints "ready"
    and sleeps until it is killed.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from kao.gallery import NewFace, open_gallery

DIM = 8
MODEL = "test_model"


def face(seed: int, source: str) -> NewFace:
    """A face with a random unit embedding of DIM dimensions, the same for the same seed."""
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return NewFace(vector / np.linalg.norm(vector), MODEL, source, (1.0, 2.0, 30.0, 40.0))


def enrol(url: str, collection: str, worker: int, calls: int) -> None:
    ids: list[int] = []
    with open_gallery(url) as gallery:
        for i in range(calls):
            person = f"w{worker}-{i % 5}"
            seed = worker * 100_000 + i * 2
            faces = [face(seed, f"{person}/{i}a.jpg"), face(seed + 1, f"{person}/{i}b.jpg")]
            ids += gallery.add_faces(collection, person, faces)
    print(json.dumps(ids), flush=True)


def hang(url: str, collection: str) -> None:
    gallery = open_gallery(url)
    before = gallery.add_faces(collection, "before", [face(i, f"before/{i}.jpg") for i in range(3)])
    print(json.dumps(before), flush=True)

    def pause() -> None:
        print("ready", flush=True)
        time.sleep(600)

    gallery._before_commit = pause
    gallery.add_faces(collection, "victim", [face(1000 + i, f"victim/{i}.jpg") for i in range(20)])
    print("committed: the test should have killed this process", flush=True)


def main(argv: list[str]) -> None:
    mode, url, collection, *rest = argv
    if mode == "enrol":
        enrol(url, collection, int(rest[0]), int(rest[1]))
    elif mode == "hang":
        hang(url, collection)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
