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


def _accuracy_key(meta, arrays):
    meta["accuracy"]["1,2"] = {"int8_test": 0.5}


def _accuracy_value(meta, arrays):
    meta["accuracy"]["1,1,1"]["int8_test"] = 1.5


def _m_zero(meta, arrays):
    arrays["conv1.M"] = np.zeros_like(arrays["conv1.M"])


def _s_48(meta, arrays):
    arrays["conv3.S"] = np.full_like(arrays["conv3.S"], 48)


def _float_weights(meta, arrays):
    arrays["conv2.weight"] = arrays["conv2.weight"].astype(np.float32)


def _version_1(meta, arrays):
    meta["version"] = 1


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
    for f in (_accuracy_key, _accuracy_value, _m_zero, _s_48, _float_weights, _version_1):
        _resigned(d / f"{f.__name__[1:]}.npz", f)
    for name, text in (("no_deadline", "share\n1\n"), ("negative", "deadline_us\n100\n-5\n"),
                       ("text", "deadline_us\nabc\n"), ("empty", ""), ("header_only", "deadline_us\n"),
                       ("share2", "deadline_us,share\n100,2\n"), ("extra", "deadline_us,budget\n100,1\n"),
                       ("floor", "deadline_us,accuracy_floor\n100,91\n"), ("one", "deadline_us\n100\n")):
        (d / f"{name}.csv").write_text(text)
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
    ("host: profile not numbers", "host", ["--layer-groups", "1,x,4"], 2, "comma-separated integers"),
    ("host: --pareto with --width", "host", ["--pareto", "--width", "1"], 2, "leave out --width"),
    ("host: --pareto on 32x32 images", "host", ["--pareto", "--data-dir", "{in}/data32"], 2, "takes 1 x 28 x 28"),
    ("host: --pareto --json under a file", "host", ["--pareto", "--json", "{in}/file/p.json"], 2, "is a file"),
    ("host: --eval-images -1", "host", ["--eval-images", "-1"], 2, "--eval-images"),
    ("host: unknown --opp", "host", ["--opp", "warp"], 2, "invalid choice"),
    ("host: unknown --backend", "host", ["--backend", "fpga"], 2, "invalid choice"),
    ("host: --images not a number", "host", ["--images", "x"], 2, "invalid int value"),
    ("host: width not a number", "host", ["--width", "abc"], 2, "not a number"),
    ("host: width 1/0", "host", ["--width", "1/0"], 2, "not a number"),
    ("host: width 2", "host", ["--width", "2"], 2, "(0, 1]"),
    ("host: width empty", "host", ["--width", ","], 2, "needs a value"),
    ("host: --checkpoint is a folder", "host", ["--checkpoint", "{out}"], 2, "not found"),
    ("host: accuracy key not a profile", "host", ["--checkpoint", "{in}/accuracy_key.npz"], 2, "accuracy key"),
    ("host: accuracy above 1", "host", ["--checkpoint", "{in}/accuracy_value.npz"], 2, "fractions"),
    ("host: M = 0", "host", ["--checkpoint", "{in}/m_zero.npz"], 2, "conv1.M outside"),
    ("host: S = 48", "host", ["--checkpoint", "{in}/s_48.npz"], 2, "conv3.S outside"),
    ("host: float weights", "host", ["--checkpoint", "{in}/float_weights.npz"], 2, "dtype float32"),
    ("host: format version 1", "host", ["--checkpoint", "{in}/version_1.npz"], 2, "v1, expected"),
    ("host: --trace file missing", "host", ["--trace", "{in}/none.csv"], 2, "does not exist"),
    ("host: --trace unknown name", "host", ["--trace", "stepp"], 2, "one of step, walk, energy"),
    ("host: --trace no deadline_us", "host", ["--trace", "{in}/no_deadline.csv"], 2, "no deadline_us column"),
    ("host: --trace negative deadline", "host", ["--trace", "{in}/negative.csv"], 2, "line 3: deadline_us must be"),
    ("host: --trace not a number", "host", ["--trace", "{in}/text.csv"], 2, "must be a number"),
    ("host: --trace empty file", "host", ["--trace", "{in}/empty.csv"], 2, "has no frames"),
    ("host: --trace header only", "host", ["--trace", "{in}/header_only.csv"], 2, "has no frames"),
    ("host: --trace share 2", "host", ["--trace", "{in}/share2.csv"], 2, "share must be in (0, 1]"),
    ("host: --trace unknown column", "host", ["--trace", "{in}/extra.csv"], 2, "unknown column 'budget'"),
    ("host: --trace floor in percent", "host", ["--trace", "{in}/floor.csv"], 2, "accuracy_floor must be in [0, 1]"),
    ("host: --trace --frames 0", "host", ["--trace", "step", "--frames", "0"], 2, "--frames"),
    ("host: --trace --frames past the file", "host", ["--trace", "{in}/one.csv", "--frames", "5"], 2,
     "has 1 frames"),
    ("host: --trace with --width", "host", ["--trace", "step", "--width", "1"], 2, "leave out --width"),
    ("host: --trace with --opp", "host", ["--trace", "step", "--opp", "low"], 2, "--opps"),
    ("host: --trace unknown --opps", "host", ["--trace", "step", "--opps", "asic"], 2, "invalid choice"),
    ("host: --trace --json under a file", "host", ["--trace", "step", "--json", "{in}/file/t.json"], 2, "is a file"),
    ("evaluate: profile too short", "evaluate", ["--groups", "1,2"], 2, "3 entries"),
    ("evaluate: width 0.3", "evaluate", ["--width", "0.3"], 2, "0.3"),
    ("evaluate: --images -1", "evaluate", ["--images", "-1"], 2, "--images"),
    ("evaluate: export is random bytes", "evaluate", ["--export", "{in}/random.npz"], 2, "not a .npz"),
    ("train: --profile without independent", "train", ["--profile", "1,2,4", "--out", "{out}/t"], 2,
     "--scheme independent"),
    ("train: --subnets with joint", "train", ["--scheme", "joint", "--subnets", "sandwich", "--out", "{out}/t"], 2,
     "--scheme incremental"),
    ("train: --profile too short", "train", ["--scheme", "independent", "--profile", "1,2", "--out", "{out}/t"], 2,
     "3 counts"),
    ("train: --profile 0", "train", ["--scheme", "independent", "--profile", "0,1,1", "--out", "{out}/t"], 2,
     "1..4"),
    ("train: unknown --subnets", "train", ["--subnets", "all", "--out", "{out}/t"], 2, "invalid choice"),
    ("train: --lr nan", "train", ["--lr", "nan", "--out", "{out}/t"], 2, "--lr and --temperature finite"),
    ("train: --lr inf", "train", ["--lr", "inf", "--out", "{out}/t"], 2, "--lr and --temperature finite"),
    ("train: --epochs 0", "train", ["--epochs", "0", "--out", "{out}/t"], 2, "--epochs"),
    ("train: --epochs for 2 stages", "train", ["--epochs", "4,4", "--out", "{out}/t"], 2, "one per stage"),
    ("train: --epochs text", "train", ["--epochs", "4,x", "--out", "{out}/t"], 2, "epochs per stage"),
    ("train: --stages 5", "train", ["--stages", "5", "--out", "{out}/t"], 2, "--stages"),
    ("train: --shift -1", "train", ["--shift", "-1", "--out", "{out}/t"], 2, "--shift"),
    ("train: --smoothing 1", "train", ["--smoothing", "1", "--out", "{out}/t"], 2, "--smoothing"),
    ("train: --distill 1", "train", ["--distill", "1", "--out", "{out}/t"], 2, "--distill in [0, 1)"),
    ("train: --temperature 0", "train", ["--temperature", "0", "--out", "{out}/t"], 2, "--temperature finite"),
    ("train: --teacher not a network", "train", ["--teacher", "{in}/file", "--distill", "0.5", "--out", "{out}/t"], 2,
     "not a network that model.train saved"),
    ("train: --teacher without --distill", "train", ["--teacher", "{in}/file", "--distill", "0", "--out",
                                                      "{out}/t"], 2, "give --distill a weight"),
    ("train: --limit -1", "train", ["--limit", "-1", "--out", "{out}/t"], 2, "--limit"),
    ("evaluate: 32x32 images", "evaluate", ["--data-dir", "{in}/data32"], 2, "takes 1 x 28 x 28"),
    ("evaluate: --json under a file", "evaluate", ["--json", "{in}/file/e.json"], 2, "is a file"),
    ("evaluate: tampered export", "evaluate", ["--export", "{in}/upper.npz"], 2, "block lower-triangular"),
    ("train: 32x32 images", "train", ["--data-dir", "{in}/data32", "--out", "{out}/t"], 2, "takes 1 x 28 x 28"),
    ("train: --out is a file", "train", ["--out", "{in}/file"], 2, "is a file"),
    ("train: --out under a file", "train", ["--out", "{in}/file/t"], 2, "is a file"),
    ("gen: --out is a file", "gen", ["--array", "4x4", "--out", "{in}/file"], 2, "give a folder"),
    ("gen: --array 8x4", "gen", ["--array", "8x4", "--out", "{out}/v"], 2, "R == C"),
    ("gen: --array text", "gen", ["--array", "big", "--out", "{out}/v"], 2, "array"),
    ("synth: unknown --device", "synth", ["--array", "4x4", "--out", "{out}/s", "--device", "xc7"], 2,
     "invalid choice"),
    ("synth: --freq -5", "synth", ["--array", "4x4", "--out", "{out}/s", "--freq", "-5"], 2, "--freq"),
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
