"""Shared fixtures for the model/ tests.

Everything is seeded; every file goes under a pytest temporary folder. Torch runs on one thread
(the suite shares the machine with training runs), and subprocesses inherit that setting.
"""
from __future__ import annotations

import os

# Before torch/numpy start their thread pools (here and in every subprocess the tests start).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REF_DIR = REPO / "model" / "ref"
REF_EXPORT = REF_DIR / "chanscale_ref.npz"
REF_FLOAT = REF_DIR / "chanscale_ref_float.npz"
TINY_SEED = 1234


@pytest.fixture
def torch1():
    """torch on one thread for the duration of a test (restored afterwards)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def subprocess_env() -> dict:
    """Environment for `python -m ...` subprocesses: the repo importable, one OpenMP thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["OMP_NUM_THREADS"] = "1"
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


# --------------------------------------------------------------------------------------------
# Fashion-MNIST (Debian's dataset-fashion-mnist; `make install` puts it there)


@pytest.fixture(scope="session")
def fmnist_dir() -> Path:
    from model.data import DEFAULT_DATA_DIR
    if not DEFAULT_DATA_DIR.is_dir():
        pytest.fail(f"Fashion-MNIST not found at {DEFAULT_DATA_DIR}: run `make install` "
                    f"(apt-get install dataset-fashion-mnist)")
    return DEFAULT_DATA_DIR


@pytest.fixture(scope="session")
def fmnist_test(fmnist_dir):
    from model.data import load_split
    return load_split("test", fmnist_dir)


@pytest.fixture(scope="session")
def fmnist_train(fmnist_dir):
    from model.data import load_split
    return load_split("train", fmnist_dir)


# --------------------------------------------------------------------------------------------
# The shipped reference network (model/ref/)


@pytest.fixture(scope="session")
def ref_paths() -> tuple[Path, Path]:
    """(float network, int8 export) shipped in model/ref/."""
    missing = [str(p) for p in (REF_FLOAT, REF_EXPORT) if not p.is_file()]
    if missing:
        pytest.fail(f"shipped reference files missing: {missing}; `make train` and copy "
                    f"build/train/float.npz and export.npz there")
    return REF_FLOAT, REF_EXPORT


@pytest.fixture(scope="session")
def ref_export(ref_paths):
    from model.export import load_export
    return load_export(ref_paths[1])


# --------------------------------------------------------------------------------------------
# A tiny untrained network, exported without training (random weights and BatchNorm statistics)


@dataclass
class TinyCase:
    head: str
    seed: int
    cfg: object
    net: object
    calib: np.ndarray  # uint8 (N, 1, 12, 12)
    images: np.ndarray  # uint8 (2, 1, 12, 12), not used for calibration
    path: Path
    export: object
    arrays: dict  # raw arrays as np.load returns them (without __meta__)
    meta: dict


def tiny_config(head: str):
    from model.config import ConvSpec, NetConfig
    return NetConfig(in_size=12, groups=4, head=head, convs=(
        ConvSpec("c1", 8, kernel=3, padding=1, pool=True),
        ConvSpec("c2", 8, kernel=3, stride=2, padding=1, pool=False)))


def build_tiny(head: str, seed: int, folder: Path) -> TinyCase:
    import json

    import torch

    from model.export import META_KEY
    from model.net import DynNet
    from model.quantize import export
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        cfg = tiny_config(head)
        net = DynNet(cfg)
        with torch.no_grad():
            for bn in net.bns:
                bn.running_mean.uniform_(-0.3, 0.3)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.4)
            for b in net.head_b:
                b.uniform_(-0.5, 0.5)
        net.eval()
        rng = np.random.default_rng(seed)
        calib = rng.integers(0, 256, size=(64, 1, 12, 12), dtype=np.uint8)
        images = rng.integers(0, 256, size=(2, 1, 12, 12), dtype=np.uint8)
        path = folder / f"tiny_{head}.npz"
        ex = export(net, calib, path)
    finally:
        torch.set_num_threads(before)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop(META_KEY).tobytes().decode())
    return TinyCase(head, seed, cfg, net, calib, images, path, ex, arrays, meta)


_TINY_CACHE: dict = {}


@pytest.fixture(scope="session")
def tiny_factory(tmp_path_factory):
    def make(head: str) -> TinyCase:
        if head not in _TINY_CACHE:
            _TINY_CACHE[head] = build_tiny(head, TINY_SEED, tmp_path_factory.mktemp(f"tiny_{head}"))
        return _TINY_CACHE[head]
    return make


@pytest.fixture(params=["per_width", "shared"])
def tiny(request, tiny_factory) -> TinyCase:
    """The tiny export in both classifier head modes."""
    return tiny_factory(request.param)


@pytest.fixture
def tiny_pw(tiny_factory) -> TinyCase:
    return tiny_factory("per_width")
