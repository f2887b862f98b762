"""Per-layer profiles: which are useful, the clipped equivalent of a narrowing one (golden logits
equal), the Pareto front against a second characterisation, and `sw/host.py --pareto` end to end."""
from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hw.contract.params import ArrayConfig
from hw.contract.program import build_program
from hw.contract.schedule import plan_run
from model import golden, profiles
from model.data import load_split, train_val_split
from sw import pareto

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("G,n", [(4, 3), (4, 2), (3, 4), (2, 1)])
def test_useful_profiles_are_the_non_decreasing_ones(G, n):
    every = list(itertools.product(range(1, G + 1), repeat=n))
    expected = [p for p in every if all(a <= b for a, b in zip(p, p[1:]))]
    got = profiles.useful(G, n)
    assert sorted(got) == sorted(expected) and len(set(got)) == len(got)
    assert [p[-1] for p in got] == sorted(p[-1] for p in got), "not grouped by stage"
    for t in range(1, G + 1):
        st = profiles.stage(G, n, t)
        assert st == [p for p in got if p[-1] == t]
        assert (t, ) * n in st and (1,) * (n - 1) + (t,) in st
    for p in every:
        c = profiles.clip(p)
        assert profiles.is_useful(c) and all(a <= b for a, b in zip(c, p)) and c[-1] == p[-1]
        assert profiles.is_useful(p) == (c == p)
        # the largest useful profile below p: raising any count of c breaks usefulness or exceeds p
        for i in range(n):
            up = c[:i] + (c[i] + 1,) + c[i + 1:]
            assert not (all(a <= b for a, b in zip(up, p)) and profiles.is_useful(up))


def test_a_narrowing_profile_computes_its_clipped_logits(ref_export, fmnist_test):
    """Golden logits of every one of the 64 profiles equal those of its clipped profile."""
    images = fmnist_test.images[:40]
    G, n = ref_export.groups, len(ref_export.convs)
    logits = {p: golden.run(ref_export, images, groups=p, keep_acts=False).logits for p in profiles.useful(G, n)}
    narrowing = [p for p in itertools.product(range(1, G + 1), repeat=n) if not profiles.is_useful(p)]
    assert len(narrowing) == G ** n - len(logits)
    for p in narrowing:
        got = golden.run(ref_export, images, groups=p, keep_acts=False).logits
        assert np.array_equal(got, logits[profiles.clip(p)]), p
    # and the profiles that are kept are not secretly the same network
    assert not np.array_equal(logits[(1, 2, 4)], logits[(1, 1, 4)])


@pytest.mark.parametrize("text", ["1,2", "1,2,4,4", "0,1,1", "1,5,4", "1,x,4", ""])
def test_bad_profiles_are_refused(text):
    with pytest.raises(profiles.ProfileError):
        profiles.parse(text, 4, 3)


def _front_by_staircase(points):
    """On the front iff the most accurate among points costing no more, and the cheapest among
    points at least as accurate (a second characterisation of non-domination)."""
    out = []
    for c, a in points:
        out.append(a == max(a2 for c2, a2 in points if c2 <= c) and c == min(c2 for c2, a2 in points if a2 >= a))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_front_against_a_second_characterisation(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    # small integer grids make ties in cost, in accuracy and of whole points common
    points = [(int(c), int(a)) for c, a in zip(rng.integers(0, 8, n), rng.integers(0, 8, n))]
    assert pareto.front(points) == _front_by_staircase(points)


def test_versus_uniform_on_made_up_rows():
    rows = [dict(profile="1,1,1", uniform=True, cycles=10, val_accuracy=0.80, test_accuracy=0.81),
            dict(profile="1,1,2", uniform=False, cycles=12, val_accuracy=0.83, test_accuracy=0.82),
            dict(profile="2,2,2", uniform=True, cycles=20, val_accuracy=0.82, test_accuracy=0.84),
            dict(profile="1,2,2", uniform=False, cycles=21, val_accuracy=0.90, test_accuracy=0.90),
            dict(profile="2,2,3", uniform=False, cycles=20, val_accuracy=0.85, test_accuracy=0.83),
            dict(profile="3,3,3", uniform=True, cycles=30, val_accuracy=0.91, test_accuracy=0.92)]
    got = pareto.versus_uniform(rows)
    assert [(v["uniform"], v["best"], v["gain_points"]) for v in got] == [("1,1,1", "1,1,1", 0.0),
                                                                          ("2,2,2", "2,2,3", -1.0)]


def test_pareto_end_to_end(tmp_path, ref_export):
    """--pareto with 100 evaluation images: every useful profile once, cycles from the schedule
    model, accuracy from the golden model on the validation split and the test set, fronts
    equal to the second characterisation, CSV and plots written."""
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(ROOT / "sw" / "host.py"), "--pareto", "--array", "16x16",
                        "--eval-images", "100", "--json", str(out / "p.json"), "--csv", str(out / "p.csv"),
                        "--plot", str(out / "plots")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "p.json").read_text())
    G, n = ref_export.groups, len(ref_export.convs)
    assert [tuple(p["groups"]) for p in doc["profiles"]] == profiles.useful(G, n)
    cfg = ArrayConfig(16, 16)
    prog = build_program(ref_export, cfg)
    test = load_split("test")
    v = ref_export.meta["validation"]
    val = train_val_split(load_split("train"), v["images"], v["seed"])[1]
    for p in doc["profiles"]:
        g = tuple(p["groups"])
        assert set(p) >= {"groups", "val_accuracy", "test_accuracy", "macs", "cycles", "latency_us", "energy_pj",
                          "front_cycles", "front_energy"}
        plan = plan_run(prog.descs, prog.chan(g), cfg, 0, prog.num_layers)
        assert p["cycles"] == plan.counters["BUSY_CYCLES"] and p["macs"] == plan.counters["MACS"]
        assert p["test_accuracy"] == golden.accuracy(ref_export, test.images[:100], test.labels[:100], groups=g)
        assert p["val_accuracy"] == golden.accuracy(ref_export, val.images[:100], val.labels[:100], groups=g)
    for name, field in pareto.COSTS.items():
        pts = [(p[field], p["val_accuracy"]) for p in doc["profiles"]]
        assert [p[f"front_{name}"] for p in doc["profiles"]] == _front_by_staircase(pts)
    assert len(doc["versus_uniform"]) == G - 1
    rows = list(csv.DictReader((out / "p.csv").open()))
    assert [r["profile"] for r in rows] == [p["profile"] for p in doc["profiles"]]
    for name in ("pareto_cycles.png", "pareto_energy.png"):
        assert (out / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_narrowing_profile_is_reported_with_its_waste(tmp_path, ref_export):
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, str(ROOT / "sw" / "host.py"), "--layer-groups", "4,4,1",
                        "--eval-images", "50", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    by = {tuple(c["groups"]): c for c in rep["configs"]}
    wide, clipped = by[(4, 4, 1)], by[(1, 1, 1)]
    assert wide["clipped_to"] == [1, 1, 1]
    assert wide["wasted_cycles"] == wide["total"]["cycles"] - clipped["total"]["cycles"] > 0
    assert wide["int8_accuracy"] == clipped["int8_accuracy"]
    assert "4,4,1 computes exactly the logits of 1,1,1" in r.stdout


def test_accuracies_of_many_profiles_equal_each_profile_run_alone(ref_export, fmnist_test):
    """golden.accuracies (layer outputs shared between profiles with a common prefix) gives, for
    every useful profile, exactly golden.accuracy's figure (each profile run on its own)."""
    G, n = ref_export.groups, len(ref_export.convs)
    every = profiles.useful(G, n)
    images, labels = fmnist_test.images[:600], fmnist_test.labels[:600]
    shared = golden.accuracies(ref_export, images, labels, every)
    assert list(shared) == every
    assert shared == {p: golden.accuracy(ref_export, images, labels, groups=p) for p in every}
    assert len(set(shared.values())) > 1  # the profiles really differ on these images
