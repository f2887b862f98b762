"""cocotb side of the host's RTL backends (``python sw/host.py --backend verilator|icarus``).

One test, ``host_session``: it reads the request that ``sw/rtl.py`` wrote into the run folder
(``TB_REQUEST``: program, images, width configurations, and optionally a runtime's frames),
resets the accelerator, checks it is the configuration the program was built for, times the bus
(cycles per write and per read), and runs ``sw.measure.measure`` (or ``measure_frames``) - the
host's own measurement coroutines and driver - through a cocotbext-axi AXI4-Lite master. It
writes the device's counters and logits to ``result.json`` (or ``{"error": ...}`` when the
device reported an error), and one line per run to ``progress.txt`` for the host's progress bar.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb

from sw.driver import AcceleratorError
from sw.measure import measure, measure_frames, to_jsonable
from sw.rtl import load_request
from sim.tb_accel import CLK_NS, TB, env_int

FOLDER = Path(os.environ.get("TB_REQUEST", "."))
TIMEOUT_MS = env_int("TB_TIMEOUT_MS", 60_000)


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(to_jsonable(data)))
    tmp.replace(path)


async def _bus_cycles(tb, n: int = 32) -> dict:
    """Clock cycles per AXI4-Lite transaction back to back: ``n`` register writes (FIRST_LAYER,
    which START rewrites) and ``n`` STATUS reads, timed in simulation."""
    out = {}
    for kind in ("write", "read"):
        ns0 = tb.now_ns()
        for _ in range(n):
            if kind == "write":
                await tb.drv.write_reg("FIRST_LAYER", 0)
            else:
                await tb.drv.read_reg("STATUS")
        out[kind] = (tb.now_ns() - ns0) / CLK_NS / n
    return out


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def host_session(dut):
    """The host's measurement session on the RTL; the results go back to the host as JSON."""
    req = load_request(FOLDER)
    program = req["program"]
    tb = TB(dut)
    assert tb.cfg == program.cfg, f"the simulator was built for {tb.cfg}, the program for {program.cfg}"
    await tb.reset()
    await tb.check_identity()
    progress = open(FOLDER / "progress.txt", "a", buffering=1)
    t0, ns0 = time.time(), tb.now_ns()
    bus_cycles = await _bus_cycles(tb)
    step = lambda name: progress.write(name + "\n")  # noqa: E731
    try:
        if req["frames"] is None:
            session = await measure(tb.drv, program, req["configs"], req["images"], req["classes"],
                                    progress=step, max_polls=req["max_polls"])
        else:
            frames = [(req["configs"][c], req["images"][i]) for c, i in req["frames"]]
            session = await measure_frames(tb.drv, program, frames, req["classes"], progress=step,
                                           max_polls=req["max_polls"])
    except AcceleratorError as e:
        _write(FOLDER / "result.json", {"error": str(e)})
        return
    finally:
        progress.close()
    wall = time.time() - t0
    cycles = int((tb.now_ns() - ns0) / CLK_NS)
    session["sim"] = dict(simulator=os.environ.get("TB_SIM", "?"), wall_s=round(wall, 2), sim_cycles=cycles,
                          cycles_per_s=round(cycles / wall) if wall > 0 else None,
                          bus_reads=tb.bus.reads, bus_writes=tb.bus.writes, bus_cycles=bus_cycles)
    _write(FOLDER / "result.json", session)
