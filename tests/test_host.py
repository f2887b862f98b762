"""sw/host.py end to end on the model backend, and every bad input it must refuse."""
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hw.contract.params import ArrayConfig
from hw.contract.program import build_program
from hw.contract.schedule import plan_run
from model import golden
from model.data import load_split
from model.export import DEFAULT_EXPORT, load_export
from sw import host

ROOT = Path(__file__).resolve().parent.parent


def test_cli_end_to_end_on_the_model_backend(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(ROOT / "sw" / "host.py"), "--width", "0.25,1", "--layer-groups", "1,2,4",
                        "--eval-images", "300", "--json", str(out / "r.json"), "--csv", str(out / "r.csv"),
                        "--plot", str(out / "plots")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "dynamic range w4 / w1" in r.stdout
    rep = json.loads((out / "r.json").read_text())
    ex = load_export()
    cfg = ArrayConfig()
    prog = build_program(ex, cfg)
    test = load_split("test")
    names = [c["name"] for c in rep["configs"]]
    assert names == ["w1", "w4", "g1-2-4"]
    for c in rep["configs"]:
        groups = tuple(c["groups"])
        # independent figures: the schedule model and the golden model
        plan = plan_run(prog.descs, prog.chan(groups), cfg, 0, prog.num_layers)
        assert c["total"]["cycles"] == plan.counters["BUSY_CYCLES"]
        assert c["total"]["macs"] == plan.counters["MACS"]
        ran = [lp for lp in plan.layers if not lp.skipped]
        assert [r["cycles"] for r in c["layers"]] == [lp.cycles for lp in ran]
        acc = golden.accuracy(ex, test.images[:300], test.labels[:300], groups=groups)
        assert c["int8_accuracy"] == acc and c["eval_images"] == 300
        assert c["outputs_match_golden"] is True
        for r in c["layers"] + [c["total"]]:
            parts = sum(r[f"energy_{k}_pj"] for k in ("mac", "pe_registers", "buffers", "offchip", "idle_clock",
                                                          "leakage"))
            assert abs(parts - r["energy_total_pj"]) < 1.0
            assert r["utilization"] == pytest.approx(r["macs"] / (r["cycles"] * 64), abs=1e-4)
    s = rep["summary"]
    w1, w4 = rep["configs"][0]["total"], rep["configs"][1]["total"]
    assert s["cycle_ratio"] == round(w4["cycles"] / w1["cycles"], 2)
    rows = list(csv.DictReader((out / "r.csv").open()))
    assert len(rows) == sum(len(c["layers"]) + 1 for c in rep["configs"])
    assert set(rows[0]) >= {"config", "layer", "macs", "cycles", "utilization", "energy_total_pj", "latency_us"}
    for name in ("accuracy_vs_energy", "accuracy_vs_latency", "cycles_per_layer", "utilization_per_layer"):
        png = out / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_operating_points_scale_energy_as_documented():
    from sw.energy import OPPS, V_REF, energy
    counters = dict(MACS=1000, BUSY_CYCLES=200, ACTA_RD=50, WGT_RD=20, BUS_WR_BYTES=64)
    cfg = ArrayConfig()
    base = energy(counters, cfg, OPPS["nominal"])
    for opp in OPPS.values():
        e = energy(counters, cfg, opp)
        assert e["mac"] == pytest.approx(base["mac"] * (opp.volts / V_REF) ** 2)
        assert e["latency_us"] == pytest.approx(200 / opp.mhz)
        # leakage: power ~ V, energy = power x time
        assert e["leakage"] == pytest.approx(base["leakage"] * (opp.volts / V_REF) * (OPPS["nominal"].mhz / opp.mhz))


def _refuse(args, tmp_path, capsys):
    out = tmp_path / "o"
    argv = args + ["--json", str(out / "r.json"), "--csv", str(out / "r.csv"), "--plot", str(out / "p"),
                   "--eval-images", "10"]
    try:
        code = host.main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, f"{args}: exit {code}"
    assert len(err) == 1 and err[0].startswith("error: "), f"{args}: stderr {err}"
    assert not out.exists(), f"{args}: wrote output"


@pytest.mark.parametrize("args", [
    ["--width", "0"], ["--width", "0.3"], ["--width", "1.5"], ["--width", "abc"], ["--width", ","],
    ["--layer-groups", "1,2"], ["--layer-groups", "1,0,2"], ["--layer-groups", "1,2,5"], ["--layer-groups", "a,b,c"],
    ["--array", "3x3"], ["--array", "2x2"], ["--array", "8x4"], ["--array", "big"],
    ["--images", "0"], ["--clock-mhz", "0"], ["--opp", "warp"], ["--backend", "fpga"],
])
def test_bad_arguments_exit_2_with_one_line_and_no_files(args, tmp_path, capsys):
    _refuse(args, tmp_path, capsys)


@pytest.mark.parametrize("damage", ["missing", "truncated", "tampered"])
def test_bad_checkpoints_exit_2_with_one_line_and_no_files(damage, tmp_path, capsys):
    ck = tmp_path / "ck.npz"
    if damage != "missing":
        shutil.copy(DEFAULT_EXPORT, ck)
        raw = bytearray(ck.read_bytes())
        if damage == "truncated":
            raw = raw[:len(raw) // 2]
        else:  # flip one weight byte inside the archive, then re-zip so only the digest can tell
            import zipfile
            with np.load(DEFAULT_EXPORT) as z:
                arrays = {k: z[k] for k in z.files}
            arrays["conv2.weight"] = arrays["conv2.weight"].copy()
            arrays["conv2.weight"][0, 0, 0, 0] ^= 1
            np.savez_compressed(ck, **arrays)
            raw = bytearray(ck.read_bytes())
            assert zipfile.is_zipfile(ck)
        ck.write_bytes(bytes(raw))
    _refuse(["--width", "1", "--checkpoint", str(ck)], tmp_path, capsys)


def test_rtl_backend_without_its_simulator_exits_2_and_writes_nothing(tmp_path):
    """--backend icarus on a machine without iverilog/vvp: one line that says how to install it."""
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, str(ROOT / "sw" / "host.py"), "--width", "1", "--backend", "icarus",
                        "--eval-images", "10", "--json", str(out / "r.json"), "--plot", str(out / "p")],
                       capture_output=True, text=True, timeout=300, env={"PATH": str(tmp_path), "HOME": str(tmp_path)})
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(err) == 1 and err[0].startswith("error: Icarus Verilog") and "install" in err[0], err
    assert not out.exists()
