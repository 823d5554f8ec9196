"""Contact sheets of the faces `kao.evaluation.smiles` counts, for labelling them by eye.

    .venv/bin/python scripts/smile_sheets.py --root .data/wider_full/WIDER_val --out /tmp/smiles

writes candidates.json (every face: its number, photo and box) and sheet-NN.png: 30 faces a
sheet, each a colour crop 1.4 times its box with its number, and no model's reading. The
labels go to kao/evaluation/wider_smiles.json ({"faces": [{"image", "box", "label"}]}, label
"smile" or "other"; faces that cannot be judged are left out)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from kao.align import face_crop
from kao.detection import analysis_detector
from kao.evaluation.smiles import candidates
from kao.face import Face
from kao.image import load_image

TILE, COLUMNS, ROWS = 160, 6, 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="WIDER_val (images/<event>/)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    detector = analysis_detector()
    faces = candidates(args.root, detector)
    records = [{"n": i, "image": c.image, "box": list(c.box)} for i, c in enumerate(faces)]
    (args.out / "candidates.json").write_text(json.dumps(records, indent=1))
    tiles = []
    for i, c in enumerate(faces):
        rgb = load_image(args.root / "images" / c.image)
        face = Face(np.array(c.box, np.float32), 1.0, np.zeros((5, 2), np.float32))
        tile = cv2.cvtColor(face_crop(rgb, face, TILE, scale=1.4), cv2.COLOR_RGB2BGR)
        cv2.putText(tile, str(i), (4, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 255), 2)
        tiles.append(tile)
    per_sheet = COLUMNS * ROWS
    for start in range(0, len(tiles), per_sheet):
        chunk = tiles[start : start + per_sheet]
        chunk += [np.zeros_like(tiles[0])] * (per_sheet - len(chunk))
        rows = [np.hstack(chunk[r * COLUMNS : (r + 1) * COLUMNS]) for r in range(ROWS)]
        cv2.imwrite(str(args.out / f"sheet-{start // per_sheet:02d}.png"), np.vstack(rows))
    print(f"{len(faces)} faces on {-(-len(faces) // per_sheet)} sheets in {args.out}")


if __name__ == "__main__":
    main()
