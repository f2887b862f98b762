"""IDX (MNIST-format) data loading: Fashion-MNIST by default, any IDX dataset works.

The files are the four standard ones (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), each plain or ``.gz``. Images come back as
``uint8`` arrays of shape ``(N, 1, H, W)``; labels as ``int64`` of shape ``(N,)``.
"""
from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_DATA_DIR = Path(os.environ.get("CHANSCALE_DATA_DIR", "/usr/share/datasets/fashion-mnist"))
INSTALL_HINT = ("install it with `apt-get install dataset-fashion-mnist` (or `make install` as root), "
                "or point --data-dir / CHANSCALE_DATA_DIR at a folder holding the four IDX files")

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# IDX type codes (the third byte of the magic number) -> numpy dtype, big-endian on disk.
_IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class DatasetError(ValueError):
    """A dataset file is missing, truncated or not in IDX format."""


def _find(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DatasetError(f"dataset file {stem}[.gz] not found in {data_dir}: {INSTALL_HINT}")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (plain or gzip) into a native-endian numpy array, checking its size."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DatasetError(f"{path}: cannot read ({e}); the file is corrupt, re-install the dataset") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number); re-install the dataset")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header; re-install the dataset")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetError(f"{path}: truncated or padded IDX file ({len(raw)} bytes, header says "
                           f"{expected}); re-install the dataset")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an array as an IDX file (gzip if the name ends in .gz). Used by tests and tools."""
    array = np.asarray(array)
    code = {v.newbyteorder("="): k for k, v in _IDX_DTYPES.items()}[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    Path(path).write_bytes(gzip.compress(raw) if str(path).endswith(".gz") else raw)


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 (N, 1, H, W)
    labels: np.ndarray  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, idx) -> "Split":
        return Split(self.images[idx], self.labels[idx])


def load_split(split: str = "test", data_dir: str | os.PathLike | None = None) -> Split:
    """Load ``"train"`` or ``"test"`` from an IDX folder (default: Debian's Fashion-MNIST)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    data_dir = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    if not data_dir.is_dir():
        raise DatasetError(f"dataset folder {data_dir} does not exist: {INSTALL_HINT}")
    img_stem, lbl_stem = SPLITS[split]
    images = read_idx(_find(data_dir, img_stem))
    labels = read_idx(_find(data_dir, lbl_stem))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{data_dir}/{img_stem}: expected uint8 images of shape (N, H, W), "
                           f"got {images.dtype} {images.shape}; {INSTALL_HINT}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{data_dir}: {len(images)} images but labels of shape {labels.shape}; "
                           f"{INSTALL_HINT}")
    return Split(images[:, None, :, :], labels.astype(np.int64))


def check_images(split: Split, channels: int, size: int, what: str) -> None:
    """DatasetError unless ``split`` holds ``channels`` x ``size`` x ``size`` images (what
    ``what``, e.g. a network's input, takes): checked before any work uses them."""
    got = tuple(split.images.shape[1:])
    if got != (channels, size, size):
        raise DatasetError(f"the images are {got[0]} x {got[1]} x {got[2]} (channels x height x width), but "
                           f"{what} takes {channels} x {size} x {size}; use a dataset of that shape")


def train_val_split(train: Split, val_size: int = 5000, seed: int = 0) -> tuple[Split, Split]:
    """Hold out ``val_size`` training images (seeded) for model selection; the test set is never
    used for tuning."""
    if not 0 < val_size < len(train):
        raise ValueError(f"val_size must be in (0, {len(train)}), got {val_size}")
    perm = np.random.default_rng(seed).permutation(len(train))
    return train.take(perm[val_size:]), train.take(perm[:val_size])
