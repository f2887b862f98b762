"""pytest side of the RTL testbenches: simulator selection and the ``rtl`` fixture that runs one
cocotb test of ``tb_accel.py`` (or another ``tb_*`` module) on a built simulator. Toolchain
set-up, Verilog generation and the build caches are in ``sim/runner.py`` (shared with the host's
RTL backends, ``sw/rtl.py``).

Environment (all optional):

``SIM``        ``verilator``, ``icarus`` or ``both`` (default ``both``; a comma list works too). A
               selected simulator that is not installed fails its cases with the install hint.
``SEED``       seed of every random choice on the cocotb side (default 1); each failure prints it.
``LAYERS``     random conv layers per test (overrides the tier's count; the campaign's too).
``LAYER``      run only random layer number LAYER of SEED (the reproducer a failure prints).
``SIM_ARRAY``  the array of the default tier (default ``4x4``; ``make test`` and ``make sim``).
``WAVES=1``    build with tracing and write FST (Icarus) / VCD (Verilator) into the run folder.
``POLL=1``     wait for DONE by polling STATUS over the bus only (default: sleep on ``irq``,
               bounded, then read STATUS through the driver).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sim import runner
from sim.runner import BUILD, SIMULATORS, SimError

TB_MODULE = "sim.tb_accel"


def selected_simulators() -> list[str]:
    text = os.environ.get("SIM", "both").strip().lower() or "both"
    if text in ("both", "all"):
        return list(SIMULATORS)
    sims = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in sims if s not in SIMULATORS]
    if bad:
        raise pytest.UsageError(f"SIM={text!r}: unknown simulator(s) {bad}; use verilator, icarus or both")
    return sims


def env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "")
    if not text.strip():
        return default
    try:
        return int(text, 0)
    except ValueError:
        raise pytest.UsageError(f"{name}={text!r} is not an integer") from None


def waves_on() -> bool:
    return os.environ.get("WAVES", "0").strip().lower() in ("1", "yes", "true", "on")


def pytest_configure(config):
    runner.setup_toolchain()


def pytest_generate_tests(metafunc):
    if "sim" in metafunc.fixturenames:
        only = getattr(metafunc.function, "simulators", None)
        sims = [s for s in selected_simulators() if only is None or s in only]
        metafunc.parametrize("sim", sims)


def build_rtl(sim: str, array: str, target=None) -> runner.Build:
    """The simulator build of the tier array ``array`` (``runner.array_config``), or a test failure.
    ``target``: the netlist (``runner.TARGETS``; None: the portable Verilog)."""
    try:
        b = runner.build_rtl(sim, runner.array_config(array), waves_on(), log=lambda m: print(f"[sim] {m}"),
                             target=target)
    except SimError as e:
        pytest.fail(str(e), pytrace=False)
    if b.built_now:
        print(f"[sim] built {sim} {b.label} in {b.build_seconds:.1f} s (Verilog generated in "
              f"{b.generate_seconds:.1f} s) -> {b.dir}")
        b.built_now = False  # say it once
    return b


class RTL:
    """Runs cocotb tests on built simulators (fixture ``rtl``)."""

    def __init__(self, request):
        self.request = request

    def run_dir(self, b: runner.Build) -> Path:
        return b.dir / self.request.node.name.replace("/", "_").replace("[", "-").replace("]", "")

    def run(self, sim: str, array: str, testcase: str, module: str = TB_MODULE, target=None,
            **params) -> Path:
        """Run cocotb test ``module.testcase`` with ``TB_<NAME>`` = params on the ``target``
        netlist (None: portable); returns its run folder."""
        b = build_rtl(sim, array, target)
        run_dir = self.run_dir(b)
        params = dict(params)
        params["node"] = self.request.node.nodeid  # for the reproducer a failure prints
        params["perf"] = str(BUILD / "sim" / "perf.jsonl")
        params["seed"] = str(env_int("SEED", 1))
        if os.environ.get("LAYER", "").strip():
            params["only"] = str(env_int("LAYER", 0))
        params["poll"] = "1" if os.environ.get("POLL", "0").strip() in ("1", "yes", "true") else "0"
        t = time.time()
        try:
            runner.run_test(b, module, testcase, run_dir, params)
        except SimError as e:
            pytest.fail(f"{e} (SEED={params['seed']})", pytrace=False)
        print(f"[sim] {sim} {b.label} {testcase}: {time.time() - t:.1f} s")
        return run_dir


@pytest.fixture
def rtl(request) -> RTL:
    return RTL(request)
