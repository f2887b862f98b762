"""The host's RTL backends: the same measurement coroutine (``sw.measure.measure``) and the same
driver (``sw.driver.Driver``) run inside cocotb against the generated Verilog, on Verilator or
Icarus, through a cocotbext-axi AXI4-Lite master (hardware in the loop).

The host process builds the simulator once per Verilog text (``sim/runner.py``, cached under
``build/sim/``), writes the program, images and configurations into a run folder under
``build/host/``, and starts cocotb test ``sim/tb_host.py::host_session``. That test returns the
device's counters and logits as JSON; the simulator's own output goes to ``sim.log`` in the run
folder and a progress bar follows the runs.
"""
from __future__ import annotations

import json
import math
import sys
import threading
import time
from pathlib import Path

import numpy as np

from hw.contract.params import ArrayConfig
from hw.contract.program import Program
from hw.contract.regmap import DESC_WORDS
from hw.contract.schedule import plan_run
from sim import runner
from sw.driver import AcceleratorError
from sw.measure import RunConfig, steps


# ------------------------------------------------------------------ request and result files


def save_program(program: Program, path: Path) -> None:
    meta = dict(cfg=program.cfg.to_dict(), descs=program.descs, n_convs=program.n_convs,
                input_shift=program.input_shift, logits_desc=program.logits_desc)
    with open(path, "wb") as f:
        np.savez(f, weights=program.weights, bias=program.bias, M=program.M, S=program.S,
                 meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))


def load_program(path: Path) -> Program:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        return Program(cfg=ArrayConfig(**meta["cfg"]), descs=meta["descs"], weights=z["weights"], bias=z["bias"],
                       M=z["M"], S=z["S"], n_convs=meta["n_convs"], input_shift=meta["input_shift"],
                       logits_desc=meta["logits_desc"])


def load_request(folder: Path) -> dict:
    """What ``host_session`` runs: program, configs, images, classes and its bounds."""
    req = json.loads((folder / "request.json").read_text())
    return dict(program=load_program(folder / "program.npz"),
                configs=[RunConfig(groups=tuple(c["groups"]), uniform=c["uniform"]) for c in req["configs"]],
                images=np.load(folder / "images.npy", allow_pickle=False), classes=req["classes"],
                max_polls=req["max_polls"], timeout_ms=req["timeout_ms"], frames=req.get("frames"))


def bounds(program: Program, configs, images, frames: int = 0) -> tuple[int, int]:
    """(most STATUS polls of one wait, simulated-time limit in ms): generous multiples of the
    schedule's cycle counts and of the bus words, so they catch hangs, not slowness (``frames``:
    a runtime's frames, each at the longest configuration, on top of one image per config)."""
    cfg = program.cfg
    longest, total = 1, 0
    for c in configs:
        chan = [(0, 0)] * cfg.n_desc if c.uniform else program.chan(c.groups)
        cycles = plan_run(program.descs, chan, cfg, 0, program.num_layers, c.uniform or 0).counters.get("BUSY_CYCLES", 0)
        longest = max(longest, cycles)
        total += cycles * (len(images) + 1)
    total += longest * frames
    words = (program.weights.size + 2 * program.bias.size) // 4 + DESC_WORDS * len(program.descs) \
        + len(configs) * (len(images) * (images[0].size // 4 + 200) + 200 * program.num_layers) \
        + frames * (images[0].size + 200)
    sim_cycles = 3 * total + 100 * words + 1_000_000
    return longest + 10_000, math.ceil(sim_cycles * runner.CLK_NS / 1e6)


# ------------------------------------------------------------------ the run


def run_rtl(backend: str, acfg, program: Program, configs, images, classes: int, waves: bool = False,
            progress: bool = True, frames: list | None = None) -> dict:
    """``measure(...)`` on the RTL of ``acfg`` in simulator ``backend`` (verilator or icarus), or
    with ``frames`` (a list of (config index, image index)) ``measure_frames`` over those frames.

    Returns the session dict of ``sw.measure.measure`` (``measure_frames``) plus
    ``session["sim"]``: the simulator, its wall time, the simulated cycles and the bus cycles per
    transaction measured there. Raises ``AcceleratorError`` for an error the device reported and
    ``sim.runner.SimError`` when a build or the simulation itself failed."""
    say = (lambda m: print(f"[{backend}] {m}", file=sys.stderr, flush=True)) if progress else None
    b = runner.build_rtl(backend, acfg, waves, log=say)
    if b.built_now and say:
        say(f"built in {b.build_seconds:.0f} s -> {b.dir}")
    folder = runner.BUILD / "host" / f"{backend}_{b.label}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("result.json", "progress.txt"):
        (folder / name).unlink(missing_ok=True)
    save_program(program, folder / "program.npz")
    np.save(folder / "images.npy", np.ascontiguousarray(np.asarray(images, np.uint8)), allow_pickle=False)
    max_polls, timeout_ms = bounds(program, configs, images, len(frames or ()))
    (folder / "request.json").write_text(json.dumps(dict(
        configs=[dict(groups=list(c.groups), uniform=c.uniform) for c in configs], classes=classes,
        max_polls=max_polls, timeout_ms=timeout_ms, frames=frames and [list(map(int, f)) for f in frames]),
        indent=1))
    outcome: dict = {}

    def simulate():
        try:
            outcome["results"] = runner.run_test(b, "sim.tb_host", "host_session", folder,
                                                 dict(request=folder, timeout_ms=timeout_ms),
                                                 log_file=folder / "sim.log")
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = e

    t0 = time.time()
    worker = threading.Thread(target=simulate, daemon=True)
    worker.start()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(frames) if frames else steps(configs, images, program), desc=f"{backend} {b.label}", unit="run",
                   file=sys.stderr, leave=False)
    while worker.is_alive():
        worker.join(0.5)
        if bar is not None:
            done = (folder / "progress.txt").read_text().count("\n") if (folder / "progress.txt").is_file() else 0
            bar.update(done - bar.n)
    if bar is not None:
        bar.close()
    result_path = folder / "result.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else None
    if result is not None and "error" in result:
        raise AcceleratorError(f"{result['error']} ({backend} {b.label}; log {folder / 'sim.log'})")
    if "error" in outcome:
        raise outcome["error"]
    if result is None:
        raise runner.SimError(f"{backend} {b.label}: the testbench wrote no result (log {folder / 'sim.log'})")
    result["sim"]["host_wall_s"] = round(time.time() - t0, 2)
    result["sim"]["build_seconds"] = b.build_seconds
    return result
