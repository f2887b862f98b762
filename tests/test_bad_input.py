"""Bad input, table-driven, over the command lines (`sw/host.py`, `model.evaluate`, `model.train`,
`hw.flow.gen`, `hw.flow.lint`, `hw.flow.synth`):
each case exits with its status, prints exactly one line on stderr that says what is wrong, and
writes nothing. Every check runs before any work (training included: a wrong dataset is refused
before the first epoch)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from model.data import write_idx
from model.export import DEFAULT_EXPORT, META_KEY, _digest


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs) + \
        sorted(os.path.relpath(os.path.join(d, s), root) for d, ss, _ in os.walk(root) for s in ss)


def _resigned(path, mutate):
    """The shipped export with ``mutate(meta, arrays)`` applied, then signed again (a file that
    passes the digest: only the loader's own checks can refuse it)."""
    with np.load(DEFAULT_EXPORT, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop(META_KEY).tobytes())
    del meta["digest"]
    mutate(meta, arrays)
    meta["digest"] = _digest(arrays, meta)  # signed as save_export would (which refuses a bad network)
    np.savez_compressed(path, **arrays, **{META_KEY: np.frombuffer(json.dumps(meta).encode(), np.uint8)})
    return path


def _upper_block(meta, arrays):
    w = arrays["conv2.weight"].copy()
    w[:16, 8:16] = 1  # output group 0 reading input group 1
    arrays["conv2.weight"] = w


def _in_size(meta, arrays):
    meta["layers"][1]["in_size"] = 13


def _classifier_kernel(meta, arrays):
    meta["layers"][-1]["padding"] = 1


@pytest.fixture
def inputs(tmp_path):
    """Bad inputs, made before the snapshot: a 32x32 dataset, a regular file, broken exports."""
    d = tmp_path / "in"
    d.mkdir()
    rng = np.random.default_rng(3)
    (d / "data32").mkdir()
    for stem, n in (("train", 64), ("t10k", 16)):
        write_idx(d / "data32" / f"{stem}-images-idx3-ubyte", rng.integers(0, 256, (n, 32, 32), dtype=np.uint8))
        write_idx(d / "data32" / f"{stem}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    (d / "file").write_text("a regular file\n")
    (d / "random.npz").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (d / "truncated.npz").write_bytes(DEFAULT_EXPORT.read_bytes()[:20_000])
    _resigned(d / "upper.npz", _upper_block)
    _resigned(d / "in_size.npz", _in_size)
    _resigned(d / "classifier.npz", _classifier_kernel)
    (tmp_path / "out").mkdir()
    return d


# (id, tool, argv with {in} / {out} placeholders, exit status, words the one line must hold)
CASES = [
    ("host: 32x32 images", "host", ["--width", "0.25", "--data-dir", "{in}/data32"], 2, "takes 1 x 28 x 28"),
    ("host: --json under a file", "host", ["--width", "1", "--json", "{in}/file/r.json"], 2, "is a file"),
    ("host: --csv is a folder", "host", ["--width", "1", "--csv", "{out}"], 2, "is a folder"),
    ("host: --plot is a file", "host", ["--width", "1", "--plot", "{in}/file"], 2, "give a folder"),
    ("host: good --json, bad --csv", "host", ["--width", "1", "--json", "{out}/r.json", "--csv",
                                               "{in}/file/r.csv"], 2, "--csv"),
    ("host: --clock-mhz inf", "host", ["--width", "1", "--clock-mhz", "inf"], 2, "--clock-mhz"),
    ("host: --clock-mhz nan", "host", ["--width", "1", "--clock-mhz", "nan"], 2, "--clock-mhz"),
    ("host: --clock-mhz 1e-300", "host", ["--width", "1", "--clock-mhz", "1e-300"], 2, "--clock-mhz"),
    ("host: --clock-mhz 0", "host", ["--width", "1", "--clock-mhz", "0"], 2, "--clock-mhz"),
    ("host: --array 2x2", "host", ["--width", "1", "--array", "2x2"], 2, "4x4, 8x8 or 16x16"),
    ("host: --array 8x4", "host", ["--width", "1", "--array", "8x4"], 2, "R == C"),
    ("host: random bytes", "host", ["--checkpoint", "{in}/random.npz"], 2, "not a .npz (zip) archive"),
    ("host: truncated export", "host", ["--checkpoint", "{in}/truncated.npz"], 2, "truncated or corrupt"),
    ("host: missing export", "host", ["--checkpoint", "{in}/none.npz"], 2, "not found"),
    ("host: unconnected block not zero", "host", ["--checkpoint", "{in}/upper.npz"], 2, "block lower-triangular"),
    ("host: layer size chain broken", "host", ["--checkpoint", "{in}/in_size.npz"], 2, "in_size"),
    ("host: classifier not valid conv", "host", ["--checkpoint", "{in}/classifier.npz"], 2, "padding"),
    ("host: width 0.3", "host", ["--width", "0.3"], 2, "0.3"),
    ("host: width 0", "host", ["--width", "0"], 2, "0"),
    ("host: profile too short", "host", ["--layer-groups", "1,2"], 2, "3 counts"),
    ("host: profile 0", "host", ["--layer-groups", "0,1,1"], 2, "1..4"),
    ("host: profile 5", "host", ["--layer-groups", "1,2,5"], 2, "1..4"),
    ("host: --images 0", "host", ["--images", "0"], 2, "--images"),
    ("host: empty data folder", "host", ["--data-dir", "{out}"], 2, "not found"),
    ("evaluate: 32x32 images", "evaluate", ["--data-dir", "{in}/data32"], 2, "takes 1 x 28 x 28"),
    ("evaluate: --json under a file", "evaluate", ["--json", "{in}/file/e.json"], 2, "is a file"),
    ("evaluate: tampered export", "evaluate", ["--export", "{in}/upper.npz"], 2, "block lower-triangular"),
    ("train: 32x32 images", "train", ["--data-dir", "{in}/data32", "--out", "{out}/t"], 2, "takes 1 x 28 x 28"),
    ("train: --out is a file", "train", ["--out", "{in}/file"], 2, "is a file"),
    ("train: --out under a file", "train", ["--out", "{in}/file/t"], 2, "is a file"),
    ("gen: --out is a file", "gen", ["--array", "4x4", "--out", "{in}/file"], 2, "give a folder"),
    ("gen: --array 3x3", "gen", ["--array", "3x3", "--out", "{out}/v"], 2, "4x4, 8x8 or 16x16"),
    ("lint: --verilog-dir under a file", "lint", ["--array", "4x4", "--verilog-dir", "{in}/file/v"], 2, "is a file"),
    ("synth: --out is a file", "synth", ["--array", "4x4", "--out", "{in}/file"], 2, "give a folder"),
    ("synth: --freq inf", "synth", ["--array", "4x4", "--out", "{out}/s", "--freq", "inf"], 2, "--freq"),
    ("synth: --timeout 0", "synth", ["--array", "4x4", "--out", "{out}/s", "--timeout", "0"], 2, "--timeout"),
]


def _main(tool):
    import importlib
    module = {"host": "sw.host", "evaluate": "model.evaluate", "train": "model.train", "gen": "hw.flow.gen",
              "lint": "hw.flow.lint", "synth": "hw.flow.synth"}[tool]
    return importlib.import_module(module).main


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, inputs, tmp_path, capsys):
    _, tool, argv, status, words = case
    argv = [a.format(**{"in": inputs, "out": tmp_path / "out"}) for a in argv]
    before = _tree(tmp_path)
    try:
        rc = _main(tool)(argv)
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == status, (rc, err)
    assert len(err) == 1, f"expected one line on stderr, got {err}"
    assert words in err[0], err[0]
    assert "Traceback" not in err[0]
    assert _tree(tmp_path) == before, "a refused run wrote files"
