"""model.data: IDX reading/writing, the split loader, its error messages, the validation split."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from model.data import DatasetError, Split, load_split, read_idx, train_val_split, write_idx

NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
FIX_HINTS = ("install", "--data-dir")  # "re-install" contains "install"


def _says_how_to_fix(err) -> bool:
    return any(h in str(err) for h in FIX_HINTS)


def _make_dataset(folder, seed, gz, n_train=30, n_test=12, size=(6, 5)):
    """Write the four standard IDX files; return what was written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, *size), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        img_name, lbl_name = NAMES[split]
        suffix = ".gz" if gz else ""
        write_idx(folder / (img_name + suffix), images)
        write_idx(folder / (lbl_name + suffix), labels)
        written[split] = (images, labels)
    return written


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_load_split_round_trip(tmp_path, gz):
    seed = 7 + gz
    written = _make_dataset(tmp_path / "d", seed, gz)
    for split in ("train", "test"):
        s = load_split(split, data_dir=tmp_path / "d")
        images, labels = written[split]
        assert s.images.dtype == np.uint8 and s.images.shape == (len(images), 1, 6, 5), f"seed {seed}"
        assert s.labels.dtype == np.int64 and s.labels.shape == (len(labels),), f"seed {seed}"
        assert np.array_equal(s.images[:, 0], images), f"seed {seed}"
        assert np.array_equal(s.labels, labels.astype(np.int64)), f"seed {seed}"
        assert len(s) == len(labels)
    # str paths work too
    assert len(load_split("test", data_dir=str(tmp_path / "d"))) == 12


def test_load_split_bad_split_name(tmp_path):
    _make_dataset(tmp_path / "d", 9, False)
    with pytest.raises(ValueError):
        load_split("validation", data_dir=tmp_path / "d")


def test_idx_file_layout_by_hand(tmp_path):
    """The IDX header, written out by hand: 0, 0, type code, ndim, big-endian sizes."""
    a = np.array([[1, 2, 3], [4, 5, 6]], np.int16)
    write_idx(tmp_path / "a", a)
    raw = (tmp_path / "a").read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0B, 2])
    assert raw[4:12] == (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    assert raw[12:] == b"".join(int(v).to_bytes(2, "big", signed=True) for v in a.ravel())


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_read_idx_dtypes(tmp_path, dtype, gz):
    seed = 11
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        a = rng.normal(size=(3, 4, 2)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=(3, 4, 2), endpoint=True).astype(dtype)
    p = tmp_path / ("a.idx" + (".gz" if gz else ""))
    write_idx(p, a)
    if gz:
        assert (tmp_path / "a.idx.gz").read_bytes()[:2] == b"\x1f\x8b"
    b = read_idx(p)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative, f"{dtype} seed {seed}"
    assert np.array_equal(a, b), f"{dtype} seed {seed}"
    # 1-D and 4-D
    for shape in [(7,), (2, 1, 3, 2)]:
        c = rng.integers(0, 100, size=shape).astype(dtype)
        write_idx(p, c)
        assert np.array_equal(read_idx(p), c), f"{dtype} {shape} seed {seed}"


# --------------------------------------------------------------------------------------------
# errors: DatasetError with a message that says how to fix it


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_split("train", data_dir=tmp_path / "absent")
    assert _says_how_to_fix(e.value), str(e.value)


def test_empty_folder(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_split("test", data_dir=tmp_path)
    assert _says_how_to_fix(e.value) and "t10k-images-idx3-ubyte" in str(e.value), str(e.value)


@pytest.mark.parametrize("missing", ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_missing_file(tmp_path, missing):
    _make_dataset(tmp_path / "d", 13, False)
    (tmp_path / "d" / missing).unlink()
    with pytest.raises(DatasetError) as e:
        load_split("test", data_dir=tmp_path / "d")
    assert _says_how_to_fix(e.value) and missing in str(e.value), str(e.value)
    # the train split is still fine
    assert len(load_split("train", data_dir=tmp_path / "d")) == 30


def _corrupt(path, how):
    data = path.read_bytes()
    if how == "cut body":
        path.write_bytes(data[:-7])
    elif how == "cut header":
        path.write_bytes(data[:9])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "padded":
        path.write_bytes(data + b"\x00\x00")
    elif how == "bad magic":
        path.write_bytes(b"\x12\x34" + data[2:])
    elif how == "bad type code":
        path.write_bytes(data[:2] + b"\x07" + data[3:])


@pytest.mark.parametrize("how", ["cut body", "cut header", "empty", "padded", "bad magic", "bad type code"])
def test_corrupt_plain_idx(tmp_path, how):
    _make_dataset(tmp_path / "d", 17, False)
    _corrupt(tmp_path / "d" / "train-images-idx3-ubyte", how)
    with pytest.raises(DatasetError) as e:
        load_split("train", data_dir=tmp_path / "d")
    assert _says_how_to_fix(e.value), str(e.value)


def _gz_corrupt(path, how):
    data = path.read_bytes()
    if how == "not gzip":
        path.write_bytes(gzip.decompress(data))  # plain bytes under a .gz name
    elif how == "cut gzip stream":
        path.write_bytes(data[: len(data) // 2])
    elif how == "bad crc":
        path.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:])
    elif how == "garbage deflate body":
        path.write_bytes(data[:10] + b"\xff" * (len(data) - 10))  # reserved deflate block type
    elif how == "gzip of truncated idx":
        path.write_bytes(gzip.compress(gzip.decompress(data)[:-3]))


@pytest.mark.parametrize("how", ["not gzip", "cut gzip stream", "bad crc", "garbage deflate body",
                                 "gzip of truncated idx"])
def test_corrupt_gzip(tmp_path, how):
    _make_dataset(tmp_path / "d", 19, True)
    _gz_corrupt(tmp_path / "d" / "train-labels-idx1-ubyte.gz", how)
    with pytest.raises(DatasetError) as e:
        load_split("train", data_dir=tmp_path / "d")
    assert _says_how_to_fix(e.value), str(e.value)


def test_label_image_count_mismatch(tmp_path):
    _make_dataset(tmp_path / "d", 23, False)
    write_idx(tmp_path / "d" / "train-labels-idx1-ubyte", np.zeros(29, np.uint8))
    with pytest.raises(DatasetError) as e:
        load_split("train", data_dir=tmp_path / "d")
    assert _says_how_to_fix(e.value), f"no hint how to fix in: {e.value}"


def test_images_of_wrong_type(tmp_path):
    _make_dataset(tmp_path / "d", 29, False)
    write_idx(tmp_path / "d" / "t10k-images-idx3-ubyte", np.zeros((12, 6, 5), np.int16))
    with pytest.raises(DatasetError) as e:
        load_split("test", data_dir=tmp_path / "d")
    assert _says_how_to_fix(e.value), f"no hint how to fix in: {e.value}"


def test_nothing_written_on_errors(tmp_path):
    _make_dataset(tmp_path / "d", 31, True)
    _gz_corrupt(tmp_path / "d" / "train-labels-idx1-ubyte.gz", "cut gzip stream")
    before = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in (tmp_path / "d").iterdir())
    with pytest.raises(DatasetError):
        load_split("train", data_dir=tmp_path / "d")
    after = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in (tmp_path / "d").iterdir())
    assert before == after


# --------------------------------------------------------------------------------------------
# train/validation split


def _split(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 1, 2, 2), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256  # identify rows
    images[:, 0, 0, 1] = np.arange(n) // 256
    return Split(images, np.arange(n, dtype=np.int64))  # label = row index


@pytest.mark.parametrize("seed", [0, 3])
def test_train_val_split_deterministic_and_disjoint(seed):
    full = _split(500, 41)
    tr1, va1 = train_val_split(full, 120, seed=seed)
    tr2, va2 = train_val_split(full, 120, seed=seed)
    assert np.array_equal(tr1.labels, tr2.labels) and np.array_equal(va1.labels, va2.labels), f"seed {seed}"
    assert np.array_equal(tr1.images, tr2.images), f"seed {seed}"
    assert len(va1) == 120 and len(tr1) == 380, f"seed {seed}"
    assert not set(tr1.labels.tolist()) & set(va1.labels.tolist()), f"overlap (seed {seed})"
    assert sorted(tr1.labels.tolist() + va1.labels.tolist()) == list(range(500)), f"seed {seed}"
    # images travel with their labels
    for s in (tr1, va1):
        rows = s.images[:, 0, 0, 0].astype(np.int64) + 256 * s.images[:, 0, 0, 1].astype(np.int64)
        assert np.array_equal(rows, s.labels), f"seed {seed}"
    # a different seed gives a different split
    _, va3 = train_val_split(full, 120, seed=seed + 1)
    assert set(va3.labels.tolist()) != set(va1.labels.tolist()), f"seed {seed} vs {seed + 1}"


@pytest.mark.parametrize("val_size", [0, -1, 500, 501])
def test_train_val_split_bad_size(val_size):
    with pytest.raises(ValueError):
        train_val_split(_split(500, 43), val_size, seed=0)


def test_real_fashion_mnist(fmnist_test):
    """The installed dataset loads with the documented shapes and types."""
    assert fmnist_test.images.shape == (10000, 1, 28, 28) and fmnist_test.images.dtype == np.uint8
    assert fmnist_test.labels.dtype == np.int64
    assert sorted(np.unique(fmnist_test.labels).tolist()) == list(range(10))
