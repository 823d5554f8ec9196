"""Age-group prototypes (Burt & Perrett 1995): per age band, the mean face shape and the mean
face texture, from which `kao.aging.transform` moves a face from one band to another.

Shapes are 2D FaceMesh points in the reference frame of `kao.aging.warp` (eyes at fixed
points); textures are the faces' pixels warped piecewise-affinely onto one common mean shape
(the mean over all bands), so texture differences between bands carry no shape difference.
The committed `prototypes.npz` is built by `scripts/build_age_prototypes.py` from the UTKFace
training faces (non-commercial research licence); it holds means over thousands of faces and
no face of its own."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kao.aging.warp import FRAME_SIZE, MeshRaster, mesh_raster, reference_matrix, sample
from kao.align import apply
from kao.errors import KaoError, ModelError
from kao.geometry import canonical_model

PROTOTYPES = Path(__file__).parent / "prototypes.npz"
BANDS = ((0, 5), (6, 12), (13, 19), (20, 29), (30, 39), (40, 49), (50, 59), (60, 69), (70, 120))
"""Age bands, inclusive ranges in years."""


def band_label(band: tuple[int, int]) -> str:
    """ "0-5", ..., "70+" (the last band has no upper bound that matters)."""
    low, high = band
    return f"{low}+" if high >= 120 else f"{low}-{high}"


def band_of(bands: np.ndarray, age: float) -> int | None:
    """The index of the row of `bands` (K, 2), inclusive ranges in years, that holds `age`
    (rounded to whole years), or None."""
    years = round(float(age))
    hits = np.flatnonzero((bands[:, 0] <= years) & (years <= bands[:, 1]))
    return int(hits[0]) if len(hits) else None


@dataclass(frozen=True)
class Prototypes:
    """bands: (K, 2) int inclusive age ranges in years; counts: (K,) faces averaged per band;
    shapes: (K, 468, 2) float32 mean shape per band, reference-frame pixels; mean_shape:
    (468, 2) float32 mean over every face; textures: (K, S, S, 3) float32 mean RGB (0-255)
    per band on `mean_shape` in the S x S reference frame (0 outside it)."""

    bands: np.ndarray
    counts: np.ndarray
    shapes: np.ndarray
    mean_shape: np.ndarray
    textures: np.ndarray

    def band_index(self, age: float) -> int:
        """The index of the band holding `age` (years); KaoError outside every band."""
        band = band_of(self.bands, age)
        if band is None:
            raise KaoError(
                f"age {age:g} is outside the prototype bands ({self.labels[0]} to "
                f"{self.labels[-1]})"
            )
        return band

    @property
    def labels(self) -> list[str]:
        """Each band as text, "0-5" ... "70+"."""
        return [band_label((int(low), int(high))) for low, high in self.bands]

    def save(self, path: Path) -> None:
        """Write to `path` (.npz, compressed; textures as float16)."""
        np.savez_compressed(
            path,
            bands=self.bands.astype(np.int16),
            counts=self.counts.astype(np.int32),
            shapes=self.shapes.astype(np.float32),
            mean_shape=self.mean_shape.astype(np.float32),
            textures=self.textures.astype(np.float16),
        )


def read_prototypes(path: Path) -> Prototypes:
    """The prototypes stored at `path`; ModelError naming the file if it cannot be read."""
    try:
        with np.load(path) as data:
            prototypes = Prototypes(
                bands=data["bands"].astype(np.int64),
                counts=data["counts"].astype(np.int64),
                shapes=data["shapes"].astype(np.float32),
                mean_shape=data["mean_shape"].astype(np.float32),
                textures=data["textures"].astype(np.float32),
            )
    except (OSError, KeyError, ValueError) as error:
        raise ModelError(f"{path}: cannot read the age prototypes: {error}") from error
    if prototypes.shapes.shape[1:] != (468, 2) or prototypes.textures.shape[1:3] != (
        FRAME_SIZE,
        FRAME_SIZE,
    ):
        raise ModelError(f"{path}: age prototypes of unexpected shapes")
    return prototypes


@functools.cache
def load_prototypes() -> Prototypes:
    """The committed prototypes (`PROTOTYPES`), read once."""
    return read_prototypes(PROTOTYPES)


def frame_shape(mesh: np.ndarray) -> np.ndarray:
    """A face's (468, >=2) image-pixel mesh as (468, 2) float32 reference-frame pixels."""
    return apply(reference_matrix(mesh), np.asarray(mesh)[:, :2])


class PrototypeBuilder:
    """Averages faces into prototypes in two passes: `add_shape` every face (image mesh and
    age), then `texture_pass` gives, for each face added, where to read it and
    `add_texture` accumulates its pixels; `finish` returns the `Prototypes`."""

    def __init__(self, bands: tuple[tuple[int, int], ...] = BANDS) -> None:
        self.bands = np.array(bands, np.int64)
        self.shapes: list[np.ndarray] = []
        self.face_bands: list[int] = []
        self._sums = np.zeros((len(bands), FRAME_SIZE, FRAME_SIZE, 3), np.float64)
        self._weights = np.zeros((len(bands), FRAME_SIZE, FRAME_SIZE), np.float64)
        self._raster: MeshRaster | None = None

    def add_shape(self, mesh: np.ndarray, age: float) -> bool:
        """Count one face's shape (its (468, >=2) image mesh) in its band; False (nothing
        counted) when `age` is in no band."""
        band = band_of(self.bands, age)
        if band is None:
            return False
        self.shapes.append(frame_shape(mesh))
        self.face_bands.append(band)
        return True

    @property
    def mean_shape(self) -> np.ndarray:
        """(468, 2) mean reference-frame shape over every face added."""
        if not self.shapes:
            raise KaoError("no face was added to the age prototypes")
        return np.mean(self.shapes, axis=0).astype(np.float32)

    def add_texture(self, index: int, rgb: np.ndarray, mesh: np.ndarray) -> None:
        """Accumulate the pixels of face number `index` (in `add_shape` order), found in `rgb`
        (H x W x 3 uint8) at image mesh `mesh` (468, >=2), warped onto the mean shape."""
        if self._raster is None:
            self._raster = mesh_raster(
                self.mean_shape, canonical_model().triangles, FRAME_SIZE, FRAME_SIZE
            )
        raster = self._raster
        # The face's own mesh, read in image pixels, for each mean-shape pixel.
        maps = raster.maps(np.asarray(mesh)[:, :2])
        warped = sample(rgb, maps, replicate=True).astype(np.float64)
        band = self.face_bands[index]
        self._sums[band][raster.inside] += warped[raster.inside]
        self._weights[band][raster.inside] += 1.0

    def finish(self) -> Prototypes:
        """The prototypes of every face added; KaoError when a band got no face."""
        face_bands = np.array(self.face_bands)
        counts = np.bincount(face_bands, minlength=len(self.bands))
        if (counts == 0).any():
            empty = [band_label(tuple(b)) for b, n in zip(self.bands, counts, strict=True) if not n]
            raise KaoError(f"no face for the age bands {', '.join(empty)}")
        shapes = np.stack(
            [
                np.mean([s for s, b in zip(self.shapes, face_bands, strict=True) if b == k], axis=0)
                for k in range(len(self.bands))
            ]
        )
        weights = np.maximum(self._weights, 1.0)[..., None]
        textures = np.where(self._weights[..., None] > 0, self._sums / weights, 0.0)
        return Prototypes(
            self.bands,
            counts,
            shapes.astype(np.float32),
            self.mean_shape,
            textures.astype(np.float32),
        )
