"""Draw kao's annotated images for docs/screenshots/ (run on purpose; the tests never write there).

    .venv/bin/python scripts/screenshots.py [--data ../shared/data] [--out docs/screenshots]

writes
  drawings-crowd.png   `kao analyze`'s drawing of a crowded WIDER FACE photo: a number on each
                       face and the captions in a legend under the photo
  drawings-4000px.jpg  the same drawing of a five-face WIDER FACE photo up-scaled to 4,000 px on
                       its long side: the captions beside the faces, as legible as on a small one
  count-heatmap.png    `kao count`'s heat map of a ShanghaiTech crowd
  video-frame.png      a frame of `kao video`'s annotated video (track, age, gender, emotion, mask)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from kao.analysis import FaceAnalyzer
from kao.crowd import CrowdCounter
from kao.crowd.heatmap import draw_count
from kao.detection import analysis_detector
from kao.evaluation.synthetic_video import SCENES, write_scene
from kao.image import load_image
from kao.render import draw_analysis
from kao.video import VideoAnalyzer, draw_frame, open_video, video_detector

LFW = "lfw/lfw-deepfunneled"
WIDER = "widerface_val_subset/images"
CROWD = f"{WIDER}/0_Parade_marchingband_1_172.jpg"
GROUP = f"{WIDER}/0_Parade_Parade_0_194.jpg"
DENSE = "crowd/shanghaitech_A_train/images/IMG_1.jpg"
LONG_SIDE = 4000
VIDEO_FRAME = 40


def upscaled(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """`rgb` (H x W x 3 uint8) resized (bicubic) to `long_side` pixels on its long side."""
    factor = long_side / max(rgb.shape[:2])
    return cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


def video_frame(data: Path) -> np.ndarray:
    """Frame `VIDEO_FRAME` of the "crossing" test scene as `kao video` draws it by default."""
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder, "crossing.avi")
        write_scene(SCENES["crossing"], clip, data / LFW, data / WIDER)
        detector = video_detector()
        analysis = VideoAnalyzer(detector, analyzer=FaceAnalyzer(detector).load())
        with open_video(clip) as video:
            for result in analysis.run(video.frames()):
                if result.index == VIDEO_FRAME:
                    return draw_frame(result)
    raise SystemExit(f"the crossing scene has fewer than {VIDEO_FRAME + 1} frames")


def save(rgb: np.ndarray, path: Path) -> None:
    """`rgb` at `path`: a PNG in 256 colours (a few hundred KB), or a JPEG of quality 80."""
    image = Image.fromarray(rgb)
    if path.suffix == ".png":
        image.quantize(256).save(path, optimize=True)
    else:
        image.save(path, quality=80)
    print(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    analyzer = FaceAnalyzer(analysis_detector())

    def analysed(rgb: np.ndarray) -> np.ndarray:
        return draw_analysis(rgb, analyzer.analyze(rgb))

    save(analysed(load_image(args.data / CROWD)), args.out / "drawings-crowd.png")
    big = upscaled(load_image(args.data / GROUP), LONG_SIDE)
    save(analysed(big), args.out / "drawings-4000px.jpg")
    dense = load_image(args.data / DENSE)
    save(draw_count(dense, CrowdCounter().count(dense)), args.out / "count-heatmap.png")
    save(video_frame(args.data), args.out / "video-frame.png")


if __name__ == "__main__":
    main()
