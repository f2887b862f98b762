"""Command lines: `python -m model.train` and `python -m model.evaluate` refuse bad input with exit
status 2, one clear line on stderr, and no output written.

`model.evaluate`'s interface (being written alongside these tests): ``--export PATH``,
``--width W`` (repeatable or a comma list), ``--groups 1,2,2``, ``--images N``, ``--json PATH``,
``--data-dir DIR``.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from conftest import REPO
from model.data import write_idx

TIMEOUT = 180


def _run(python, env, module, *args):
    return subprocess.run([python, "-m", module, *map(str, args)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]


@pytest.fixture
def synthetic_data(tmp_path):
    """A tiny 28x28 IDX dataset (seeded) with the four standard names."""
    seed = 5
    rng = np.random.default_rng(seed)
    d = tmp_path / "data"
    d.mkdir()
    for stem, n in (("train", 128), ("t10k", 32)):
        write_idx(d / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        write_idx(d / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, size=n, dtype=np.uint8))
    return d


# --------------------------------------------------------------------------------------------
# python -m model.train


def test_train_bad_epochs_exits_2(python, subprocess_env, tmp_path):
    out = tmp_path / "out"
    r = _run(python, subprocess_env, "model.train", "--epochs", "0", "--out", out)
    assert r.returncode == 2, r.stderr
    assert "--epochs" in r.stderr
    assert not out.exists()


def test_train_empty_data_dir_exits_2(python, subprocess_env, tmp_path):
    data = tmp_path / "empty"
    data.mkdir()
    out = tmp_path / "out"
    r = _run(python, subprocess_env, "model.train", "--data-dir", data, "--out", out)
    assert r.returncode == 2, r.stderr
    line = _one_line(r.stderr)
    assert "install" in line, line
    assert not out.exists(), "a failed run left an output folder"
    assert list(data.iterdir()) == []


def _main_rc(argv):
    from model.train import main
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("bad", [["--batch", "0"], ["--lr", "0"], ["--lr", "-1"], ["--epochs", "-3"],
                                 ["--scheme", "bogus"], ["--head", "wide"], ["--epochs", "x"]])
def test_train_bad_args_in_process(bad, tmp_path, torch1, synthetic_data):
    out = tmp_path / "out"
    rc = _main_rc(["--data-dir", str(synthetic_data), "--out", str(out), "--threads", "1", "--native-kernels",
                   *bad])
    assert rc == 2, f"{bad}: exit status {rc}"
    assert not out.exists(), f"{bad}: output written"


@pytest.mark.parametrize("bad", [["--threads", "0"], ["--val-size", "0"], ["--val-size", "128"],
                                 ["--calib-images", "0"]])
def test_train_bad_numeric_args_exit_2(bad, tmp_path, torch1, synthetic_data, capsys):
    """Out-of-range numbers are usage errors too: exit status 2 before any work, nothing written
    (not a traceback after training, nor a half-written output folder)."""
    out = tmp_path / "out"
    argv = ["--data-dir", str(synthetic_data), "--out", str(out), "--threads", "1", "--native-kernels",
            "--epochs", "1", "--batch", "64", "--limit", "64", "--val-size", "16", "--calib-images", "32", *bad]
    rc = _main_rc(argv)
    assert rc == 2, f"{bad}: exit status {rc}"
    assert not out.exists(), f"{bad}: output written"


def test_train_distils_from_the_teacher_it_trains_or_is_given(python, subprocess_env, tmp_path, synthetic_data):
    """--distill: the independent scheme trains the full-width dense network first and it is
    both the teacher (teacher_float.npz) and the full width's result; a later run distils from
    it through --teacher (on the pinned kernels, in a fresh process)."""
    small = ["--data-dir", synthetic_data, "--epochs", "1", "--batch", "32", "--limit", "64", "--val-size", "16",
             "--calib-images", "32", "--threads", "1", "--distill", "0.5", "--temperature", "2"]
    ind, inc = tmp_path / "ind", tmp_path / "inc"
    r = _run(python, subprocess_env, "model.train", "--scheme", "independent", *small, "--out", ind)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((ind / "report.json").read_text())
    assert rep["teacher"]["source"].startswith("trained in this run")
    assert rep["train_seconds"]["4,4,4"] == rep["teacher"]["seconds"]
    with np.load(ind / "teacher_float.npz") as t, np.load(ind / "float_4-4-4.npz") as f:
        assert t.files == f.files and all(np.array_equal(t[k], f[k]) for k in t.files)
    r = _run(python, subprocess_env, "model.train", *small, "--teacher", ind / "teacher_float.npz", "--out", inc)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((inc / "report.json").read_text())
    assert rep["teacher"]["source"] == str(ind / "teacher_float.npz") and rep["distill"] == 0.5
    assert not (inc / "teacher_float.npz").exists()


# --------------------------------------------------------------------------------------------
# python -m model.evaluate


@pytest.fixture
def eval_json(tmp_path):
    return tmp_path / "report" / "eval.json"


def _evaluate(python, env, *args):
    return _run(python, env, "model.evaluate", *args)


def _assert_usage_error(r, json_path, *words):
    assert r.returncode == 2, f"exit status {r.returncode}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-2000:]}"
    line = _one_line(r.stderr)
    for w in words:
        assert w in line.lower(), f"{w!r} not in {line!r}"
    assert not json_path.exists(), "a failed run wrote its --json file"


@pytest.mark.parametrize("width", ["0.3", "abc", "0", "1.5", "-0.25", ""])
def test_evaluate_bad_width(width, python, subprocess_env, ref_paths, eval_json):
    r = _evaluate(python, subprocess_env, "--export", ref_paths[1], "--width", width, "--images", 20,
                  "--json", eval_json)
    _assert_usage_error(r, eval_json)


def test_evaluate_bad_width_in_list(python, subprocess_env, ref_paths, eval_json):
    r = _evaluate(python, subprocess_env, "--export", ref_paths[1], "--width", "0.5,0.3", "--images", 20,
                  "--json", eval_json)
    _assert_usage_error(r, eval_json)


@pytest.mark.parametrize("groups", ["1,2", "1,2,2,2", "0,1,1", "1,1,5", "a,b,c", "1.5,1,1"])
def test_evaluate_bad_groups(groups, python, subprocess_env, ref_paths, ref_export, eval_json):
    assert len(ref_export.convs) == 3 and ref_export.groups == 4  # the cases above assume this
    r = _evaluate(python, subprocess_env, "--export", ref_paths[1], "--groups", groups, "--images", 20,
                  "--json", eval_json)
    _assert_usage_error(r, eval_json)


def test_evaluate_missing_export(python, subprocess_env, tmp_path, eval_json):
    r = _evaluate(python, subprocess_env, "--export", tmp_path / "nope.npz", "--width", "1", "--images", 20,
                  "--json", eval_json)
    _assert_usage_error(r, eval_json)


@pytest.mark.parametrize("how", ["truncated", "not a zip"])
def test_evaluate_corrupt_export(how, python, subprocess_env, ref_paths, tmp_path, eval_json):
    bad = tmp_path / "bad.npz"
    if how == "truncated":
        data = ref_paths[1].read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        bad.write_text("not an export\n")
    r = _evaluate(python, subprocess_env, "--export", bad, "--width", "1", "--images", 20, "--json", eval_json)
    _assert_usage_error(r, eval_json)


def test_evaluate_empty_data_dir(python, subprocess_env, ref_paths, tmp_path, eval_json):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _evaluate(python, subprocess_env, "--export", ref_paths[1], "--width", "1", "--images", 20,
                  "--data-dir", empty, "--json", eval_json)
    _assert_usage_error(r, eval_json, "install")


def test_evaluate_runs(python, subprocess_env, ref_paths, tmp_path, eval_json):
    """The good path: repeated and comma-listed widths and a group list run and write JSON."""
    shutil.copyfile(ref_paths[1], tmp_path / "e.npz")
    r = _evaluate(python, subprocess_env, "--export", tmp_path / "e.npz", "--width", "0.25", "--width", "0.5,1",
                  "--images", 50, "--json", eval_json)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(eval_json.read_text())
    assert report, "empty JSON report"
    r = _evaluate(python, subprocess_env, "--export", tmp_path / "e.npz", "--groups", "1,2,2", "--images", 50)
    assert r.returncode == 0, r.stderr[-3000:]
