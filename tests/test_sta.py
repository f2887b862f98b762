"""hw.flow.sta: every endpoint's slack from nextpnr's SDF.

A hand-written SDF whose arrivals are summed here from its own delays, and a routed design whose
worst slack must give nextpnr's own Fmax (from its report, not from this module)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO
from hw.flow import sta, synth
from hw.contract.params import parse_array

# two registers a, b (2 bits) launch into LUTs l1, l2 and land at register c's DI and a block
# RAM's address; a name with an escaped divider; delays in ps, as nextpnr writes them
_SDF = r"""(DELAYFILE
  (SDFVERSION "3.0")
  (DESIGN "top")
  (VENDOR "nextpnr")
  (DIVIDER /)
  (TIMESCALE 1ps)
  (CELL
    (CELLTYPE "top")
    (INSTANCE )
    (DELAY
      (ABSOLUTE
        (INTERCONNECT a_TRELLIS_FF_Q/Q l1/A (900:1000:1100) (800:900:1000))
        (INTERCONNECT b_TRELLIS_FF_Q_1/Q l1/B (2000:2500:3000) (2000:2500:3000))
        (INTERCONNECT l1/F l2/C (100:200:300) (100:200:300))
        (INTERCONNECT l2/F c_TRELLIS_FF_Q_7/DI (400:500:600) (400:500:600))
        (INTERCONNECT a_TRELLIS_FF_Q/Q mem\/x/ADA0 (5000:6000:7000) (5000:6000:7000))
      )
    )
  )
"""


def _cell(ctype, inst, iopaths, checks=()):
    """One CELL of the SDF, as nextpnr writes it."""
    text = f'  (CELL\n    (CELLTYPE "{ctype}")\n    (INSTANCE {inst})\n    (DELAY (ABSOLUTE\n'
    text += "".join(f"        (IOPATH {p})\n" for p in iopaths) + "    ))\n"
    if checks:
        text += "    (TIMINGCHECK\n" + "".join(f"      ({c})\n" for c in checks) + "    )\n"
    return text + "  )\n"


_FF_CHECKS = ("SETUPHOLD (posedge DI) (posedge CLK) (0:0:0) (267:285:303)",
              "SETUPHOLD (negedge DI) (posedge CLK) (0:0:0) (267:285:303)")
_SDF += "".join([
    _cell("TRELLIS_FF", "a_TRELLIS_FF_Q", ["CLK Q (430:477:525) (430:477:525)"]),
    _cell("TRELLIS_FF", "b_TRELLIS_FF_Q_1", ["CLK Q (430:477:525) (430:477:500)"]),
    _cell("TRELLIS_COMB", "l1", ["A F (200:218:236) (200:218:236)", "B F (200:218:250) (200:218:236)"]),
    _cell("TRELLIS_COMB", "l2", ["C F (200:218:236) (200:218:236)"]),
    _cell("TRELLIS_FF", "c_TRELLIS_FF_Q_7", ["CLK Q (430:477:525) (430:477:525)"], _FF_CHECKS),
    _cell("DP16KD", r"mem\/x", ["CLKA DOA0 (5000:5500:5830) (5000:5500:5830)"],
          ["SETUPHOLD (posedge ADA0) (posedge CLKA) (100:150:180) (0:0:0)"]),
]) + ")\n"


def test_endpoint_slacks_from_a_hand_written_sdf(tmp_path):
    path = tmp_path / "t.sdf"
    path.write_text(_SDF)
    g = sta.parse_sdf(path)
    assert g.timescale_ns == pytest.approx(1e-3)
    res = sta.analyse(g, period_ns=5.0, max_paths=2)
    # c's DI: the later of a (525 + 1100 + 236) and b (525 + 3000 + 250) through l1, then l2
    c_di = max(525 + 1100 + 236, 525 + 3000 + 250) + 300 + 236 + 600
    # the block RAM's address from a, plus its 180 ps setup
    ram = 525 + 7000 + 180
    assert res["endpoints"] == 2 and res["failing"] == 1
    assert res["worst_slack_ns"] == pytest.approx(5.0 - ram / 1000)
    assert res["fmax_mhz"] == pytest.approx(1e6 / ram, abs=0.01)
    assert res["groups"] == [dict(start="a", end="mem/x", endpoints=1,
                                  worst_slack_ns=pytest.approx(5.0 - ram / 1000))]
    assert res["paths"][1]["slack_ns"] == pytest.approx(5.0 - c_di / 1000)
    # the second path starts at b (the later input of l1), not at a
    assert [p for p, _ in res["paths"][1]["pins"]] == [
        "b_TRELLIS_FF_Q_1/Q", "l1/B", "l1/F", "l2/C", "l2/F", "c_TRELLIS_FF_Q_7/DI"]
    # at a period both meet, nothing fails and Fmax is the same
    relaxed = sta.analyse(g, period_ns=10.0)
    assert relaxed["failing"] == 0 and relaxed["groups"] == []
    assert relaxed["fmax_mhz"] == pytest.approx(res["fmax_mhz"], abs=0.01)


def test_group_names_strip_bits_and_flip_flop_suffixes():
    assert sta.group_name("seq.ld_ntiles_TRELLIS_FF_Q_3") == "seq.ld_ntiles"
    assert sta.group_name("own_params_ff") == "own_params_ff"
    assert sta.group_name("prm_mem.0.0") == "prm_mem"
    assert sta.group_name("acc_new3_TRELLIS_FF_Q") == "acc_new3"


def test_combinational_loop_and_bad_input_are_errors(tmp_path):
    loop = _SDF.replace("(INTERCONNECT l2/F c_TRELLIS_FF_Q_7/DI", "(INTERCONNECT l2/F l1/A (1:1:1) (1:1:1))\n"
                        "        (INTERCONNECT l2/F c_TRELLIS_FF_Q_7/DI")
    (tmp_path / "loop.sdf").write_text(loop)
    with pytest.raises(ValueError, match="combinational loop"):
        sta.analyse(sta.parse_sdf(tmp_path / "loop.sdf"), 10.0)
    p = subprocess.run([sys.executable, "-m", "hw.flow.sta", str(tmp_path / "loop.sdf")], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "combinational loop" in p.stderr, (p.returncode, p.stderr)
    p = subprocess.run([sys.executable, "-m", "hw.flow.sta", str(tmp_path / "none.sdf")], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "no SDF" in p.stderr, (p.returncode, p.stderr)


def test_worst_slack_is_nextpnrs_fmax_on_a_routed_design(tmp_path):
    """The plain MAC grid (4x4) placed and routed on an ECP5-25F: the SDF's worst endpoint is
    nextpnr's critical path, so the Fmax computed from it is the one nextpnr reports."""
    rep = synth.run_synth(parse_array("4x4"), "ecp5-25k", out_dir=tmp_path / "synth",
                          verilog_dir=tmp_path / "verilog", design="macgrid", freq_mhz=250,
                          log=lambda *a: None)
    assert rep["status"] == "ok" and rep["fmax_mhz"], rep
    t = rep["timing"]
    assert t["fmax_mhz"] == pytest.approx(rep["fmax_mhz"], abs=0.02), (t, rep["fmax_mhz"])
    assert t["endpoints"] > 4 * 4 * 32 and t["period_ns"] == pytest.approx(4.0)
    assert t["failing"] == sum(g["endpoints"] for g in t["groups"])
    assert (t["failing"] > 0) == (rep["fmax_mhz"] < 250)
    p = subprocess.run([sys.executable, "-m", "hw.flow.sta", rep["files"]["sdf"], "--period", "4",
                        "--json", str(tmp_path / "sta.json")], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and f"Fmax {t['fmax_mhz']} MHz" in p.stdout, (p.stdout, p.stderr)
    assert json.loads((tmp_path / "sta.json").read_text())["failing"] == t["failing"]
