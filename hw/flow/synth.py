"""FPGA synthesis and place-and-route of the accelerator with open tools (Yosys + nextpnr, from
PyPI as YoWASP WebAssembly builds), and a JSON report of resources, Fmax and the critical path.

This module is the flow and its CLI; its steps live beside it: ``devices`` (parts, placers,
routers, the DSP policy), ``wrapper`` (the synthesis top and pins), ``yosys`` (script, resource
counts, fit check), ``tools`` (running YoWASP), ``nextpnr`` (utilisation, Fmax, critical path,
endpoint timing) and ``depth`` (logic depth of the Yosys netlist).

Examples::

    python -m hw.flow.synth --array 8x8 --device ecp5-45k             # -> build/synth/8x8_ecp5-45k.json
    python -m hw.flow.synth --array 4x4 --device ecp5-45k --no-pnr    # Yosys only: resource counts
    python -m hw.flow.synth --array 4x4 --device ice40-up5k
    python -m hw.flow.synth --array 8x8 --device ecp5-45k --speed 8 --seeds 1,2,3   # best of 3 seeds
    python -m hw.flow.synth --design macgrid --array 8x8 --device ecp5-45k  # the plain MAC grid baseline

Flow:

1. ``hw.flow.gen.generate`` writes the accelerator's Verilog into ``build/verilog`` (iCE40, and ECP5
   under ``--dsp all``), or, for an ECP5 under ``--dsp datapath``/``requant``, the ECP5 netlist
   into the work folder: the same RTL elaborated with ``hw.gateware.dsp.Ecp5Dsp`` as the platform, so
   each datapath multiplier is a MULT18X18D instance that holds the multiplier's operand and
   product registers (Yosys never uses those registers itself). That netlist is simulated
   bit-exact against the golden model too (``sim/test_accel.py::test_ecp5_netlist``).
2. A small wrapper (``chanscale_synth_top``) is written next to it. The accelerator's only ports
   are clk, rst, an AXI4-Lite slave and irq: about 130 signals, more than an iCE40 UP5K package
   has pins, and as pins they would put I/O buffers and pad delays into the timing report. The
   wrapper feeds every accelerator input from a shift register loaded through one pin and
   registers every output, XOR-reducing them into one pin; reset is registered too. So nothing
   can be optimised away, every path that nextpnr times is register to register inside the
   fabric, and the clock uses the global network (nextpnr-ecp5's ``--out-of-context`` would
   route the clock on general routing instead, and nextpnr-ice40 has no such mode). The wrapper
   is counted in the resources; its size is in the report (``wrapper``: about one FF per AXI
   signal, one LUT per three outputs).
3. Yosys ``synth_ecp5`` / ``synth_ice40 -dsp``, flattening the design. ``--dsp datapath`` (the
   default, ECP5 only) puts only the array's PE multipliers and the requantizer's multipliers on
   MULT18X18D (one per PE, two per lane: N*N + 2N; instantiated, ``synth_ecp5 -nodsp``); the
   sequencer's shape/address arithmetic (``H * W`` and the like, ~30 small or constant
   multiplications that Yosys would otherwise put into ~33 MULT18X18D) becomes LUT logic. When
   the device has fewer DSP blocks than N*N + 2N, the last PE rows keep LUT multipliers
   (``lut_pe_rows``: 8x8 on the ECP5-45F, one row).
   ``--dsp requant`` keeps only the requantizer's multipliers on MULT18X18D and builds every PE
   multiplier from LUTs (the array is then not drawn onto the device's two or four DSP rows).
   ``--dsp all`` is Yosys' own default (every multiplier >= 2x2 on a DSP block).
4. nextpnr (``--freq`` target, default 100 MHz, ``--timing-allow-fail`` so Fmax is reported even
   when the target is missed, a fixed seed, ``--placer static --router router1``) with ``--report`` for
   utilisation, Fmax and the critical path, and ``--sdf`` for ``hw.flow.sta``'s pass over every
   endpoint (the report's ``timing``: how many endpoints miss the target, grouped by start and
   end register). ``--no-route`` stops after placement (Fmax is then
   an estimate from unrouted delays); ``--no-lut-map`` stops Yosys before LUT mapping (exact DSP,
   block RAM and FF counts in a fraction of the time). ``--placer heap`` and ``--router router2``
   pick nextpnr's other placer and router (the 8x8 on the ECP5-45F routed with the defaults,
   and with neither placer under router2);
   ``--speed 8`` times an ECP5 of the fastest speed grade (the default, 6, is the slowest, the
   grade of ULX3S-class boards). ``--seeds 1,2,3`` places and routes under each seed, in
   parallel (``--jobs``), and writes ``<report>_seeds.json`` with the best seed (``run_seeds``):
   the seed alone moves the 8x8's Fmax by 10-16 MHz.

The baseline (``--design macgrid``, ``hw.flow.macgrid``): the plain int8 MAC grid of the same size,
multiply and accumulate in one cycle, through steps 2-4 with Yosys' own DSP mapping (its
MULT18X18D registers unused), so the accelerator's Fmax can be read against what a bare grid
reaches on the same part, flow and options.

Fit: the DSP and block-RAM counts after Yosys are exact; when one of them (or the LUT lower bound)
exceeds the device, place and route is skipped and the report says ``does not fit: N of M
<resource>``. Above 90 % of the LUTs in Yosys' count, nextpnr packs first (``--pack-only``, under
a minute) and stops there with the packed count when that exceeds the device (the 16x16 on the
85F: 85,983 of 83,640 TRELLIS_COMB), since its placer would run on for hours. A design that
does not fit is a measurement: the JSON is written with ``fits: false`` and the exit status is 0.
A tool crash or timeout exits 1 (the JSON is still written, with ``status: "error"``); bad
arguments exit 2.

The Yosys netlist is cached per (array, family, DSP policy) under ``build/synth/`` and keyed by
a hash of its inputs, so running the same array on ECP5-25F, -45F and -85F synthesises once.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from model.outputs import write_text

from .devices import (DEFAULT_PLACER, DEFAULT_ROUTER, DESIGNS, DEVICES, DSP_POLICIES, ECP5_SPEEDS,
                      PLACERS, ROUTERS, pe_rows_in_luts, with_speed)
from .depth import DEEP_PATHS, deep_paths
from .nextpnr import (PACK_CHECK_SHARE, critical_path, endpoint_timing, pnr_log_summary,
                      pnr_overflow, pnr_resources)
from .tools import ToolError, run_tool, tool_version
from .wrapper import WRAPPER_TOP, pin_constraints, ports_of, write_wrapper
from .yosys import fit_check, parse_stat, resources_from_cells, yosys_script
from model.cli import OneLineParser

DEFAULT_OUT = Path("build/synth")
DEFAULT_VERILOG = Path("build/verilog")


def _sha(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def _write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def _design_prefix(design: str) -> str:
    """What a baseline design's report and work-folder names start with ("" for the accelerator)."""
    return "" if design == "chanscale" else f"{design}_"


def report_stem(array: str, device: str, speed: int | None, *, seed: int = 1, placer: str = DEFAULT_PLACER,
                router: str = DEFAULT_ROUTER, pnr: bool = True, lut_map: bool = True, route: bool = True,
                design: str = "chanscale") -> str:
    """The name of a run's report (without ``.json``): ``8x8_ecp5-45k``, plus ``_s8`` for a speed
    grade other than the device's, ``_seed<N>`` for a seed other than 1, the placer and router
    when not the defaults, and ``_nopnr`` / ``_nolut`` / ``_placed`` for the shorter flows; the
    baseline grid's reports start with ``macgrid_``."""
    return (_design_prefix(design) + f"{array}_{device}" + (f"_s{speed}" if speed != DEVICES[device].speed else "")
            + ("" if seed == 1 else f"_seed{seed}")
            + ("" if placer == DEFAULT_PLACER else f"_{placer}")
            + ("" if router == DEFAULT_ROUTER else f"_{router}")
            + ("" if pnr else "_nopnr") + ("" if lut_map else "_nolut")
            + ("" if route or not pnr else "_placed"))


def seed_summary(reports: list) -> dict:
    """Several placer seeds of one netlist side by side (``--seeds``): each seed's Fmax and worst
    path, how many met the target, the range, and the best seed. The placer's seed alone moves
    the 8x8's Fmax by 10-16 MHz, so a board build takes the best of a few seeds."""
    rows = [dict(seed=r.get("seed"), status=r.get("status"), fmax_mhz=r.get("fmax_mhz"),
                 meets_target=r.get("meets_target"),
                 critical_path=(r.get("critical_path") or {}).get("line"), report=r.get("report"),
                 failing_endpoints=(r.get("timing") or {}).get("failing"),
                 nextpnr_s=(r.get("times_s") or {}).get("nextpnr"), error=r.get("error"))
            for r in reports]
    timed = [r for r in rows if r["fmax_mhz"] is not None]
    best = max(timed, key=lambda r: r["fmax_mhz"]) if timed else None
    first = next((r for r in reports if r.get("array")), {})  # a seed that died early has no report
    return dict(design=first.get("design"), array=first.get("array"), device=first.get("device"),
                part=first.get("part"),
                speed_grade=first.get("speed_grade"), target_mhz=first.get("target_mhz"),
                placer=first.get("placer"), router=first.get("router"), runs=len(rows), timed=len(timed),
                met=sum(1 for r in timed if r["meets_target"]),
                fmax_min_mhz=min((r["fmax_mhz"] for r in timed), default=None),
                fmax_max_mhz=max((r["fmax_mhz"] for r in timed), default=None),
                fmax_mean_mhz=round(sum(r["fmax_mhz"] for r in timed) / len(timed), 2) if timed else None,
                best_seed=best["seed"] if best else None, best_report=best["report"] if best else None,
                seeds=rows)


def parse_seeds(text: str) -> list:
    """``"1,2,3"`` -> [1, 2, 3]; ``ValueError`` (with what to write instead) for anything else."""
    try:
        seeds = [int(t) for t in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or any(s < 1 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds takes distinct positive integers separated by commas, e.g. 1,2,3; got {text!r}")
    return seeds


def run_seeds(cfg, device: str, seeds: list, *, jobs: int | None = None, out_dir=DEFAULT_OUT,
              verilog_dir=DEFAULT_VERILOG, freq_mhz: float = 100.0, dsp: str = "datapath", timeout: float = 3600.0,
              router: str = DEFAULT_ROUTER, placer: str = DEFAULT_PLACER, speed: int | None = None,
              route: bool = True, use_cache: bool = True, design: str = "chanscale", log=print) -> dict:
    """Place and route one netlist under each of ``seeds``, ``jobs`` nextpnr runs at a time (default:
    one per core, at most one per seed); write ``<report>_seeds.json`` (:func:`seed_summary`) next
    to the seeds' own reports and return it. Yosys runs once, before the seeds (its netlist is
    cached); each seed is a ``python -m hw.flow.synth --seed N`` process of its own, its output in
    ``<report>.log``. A seed whose tools fail is in the summary with ``status: "error"``."""
    out_dir = Path(out_dir)
    common = dict(out_dir=out_dir, verilog_dir=verilog_dir, freq_mhz=freq_mhz, dsp=dsp, timeout=timeout,
                  router=router, placer=placer, speed=speed, design=design, log=log)
    pre = run_synth(cfg, device, pnr=False, use_cache=use_cache, **common)  # Yosys once; validates the options
    array, spd = pre["array"], pre["speed_grade"]
    stems = {s: report_stem(array, device, spd, seed=s, placer=placer, router=router, route=route, design=design)
             for s in seeds}
    summary_path = out_dir / (report_stem(array, device, spd, placer=placer, router=router, route=route,
                                          design=design) + "_seeds.json")
    if pre["fits"] is False:
        summary = dict(seed_summary([]), array=array, device=device, fits=False, fit=pre["fit"])
        _write_json(summary_path, summary)
        return dict(summary, report=str(summary_path))
    jobs = max(1, min(len(seeds), jobs or os.cpu_count() or 1))
    # more runs than cores: each gets a share of one, so its time limit stretches by as much
    # (8x8 runs sharing two cores with six other jobs passed the one-hour limit)
    timeout *= max(1.0, jobs / (os.cpu_count() or 1))
    argv = ["--array", array, "--device", device, "--freq", repr(freq_mhz), "--dsp", dsp, "--timeout", repr(timeout),
            "--router", router, "--placer", placer, "--out", str(out_dir), "--verilog-dir", str(verilog_dir),
            "--design", design]
    argv += ["--speed", str(speed)] if speed is not None else []
    argv += [] if route else ["--no-route"]
    argv += ["--yosys-key", pre["yosys_key"]]  # each seed places this netlist, or fails
    log(f"[synth] seeds {', '.join(map(str, seeds))}: nextpnr, {jobs} at a time (time limit {timeout:.0f} s each) ...")

    def one(s):
        path, out = out_dir / f"{stems[s]}.json", out_dir / f"{stems[s]}.log"
        path.unlink(missing_ok=True)  # no stale report stands in for a failed run
        with open(out, "w") as f:
            rc = subprocess.run([sys.executable, "-m", "hw.flow.synth", *argv, "--seed", str(s)],
                                stdout=f, stderr=subprocess.STDOUT).returncode
        rep = json.loads(path.read_text()) if path.exists() else {}
        if rc != 0 or rep.get("seed") != s:  # a tool failed, or the run died before its report
            rep = dict(rep, seed=s, status="error", fmax_mhz=None, meets_target=None,
                       error=rep.get("error") or f"exited {rc}; see {out}")
        log(f"[synth] seed {s}: " + (f"{rep['fmax_mhz']} MHz" if rep.get("fmax_mhz") else
                                     f"{rep.get('status')}: {rep.get('error') or rep.get('fit')}"))
        return dict(rep, report=str(path))

    with ThreadPoolExecutor(jobs) as pool:  # each thread waits on its seed's process
        reports = list(pool.map(one, seeds))
    summary = seed_summary(reports)
    _write_json(summary_path, summary)
    return dict(summary, report=str(summary_path))


def run_synth(cfg, device: str, *, out_dir=DEFAULT_OUT, verilog_dir=DEFAULT_VERILOG, pnr: bool = True,
              freq_mhz: float = 100.0, dsp: str = "datapath", seed: int = 1, timeout: float = 3600.0,
              router: str = DEFAULT_ROUTER, use_cache: bool = True, lut_map: bool = True, route: bool = True,
              placer: str = DEFAULT_PLACER, speed: int | None = None, yosys_key: str | None = None,
              design: str = "chanscale", log=print) -> dict:
    """Run the flow for ``cfg`` on ``device``; write and return the report.

    The report lands in ``<out_dir>/<R>x<C>_<device>.json`` (``..._nopnr.json`` with
    ``pnr=False``). Raises ``ValueError`` for an unknown device or DSP policy; tool failures
    are recorded in the report (``status: "error"``) and re-raised as :class:`ToolError`.
    ``speed`` picks an ECP5 speed grade other than the device's default (6, the slowest):
    the part name, nextpnr's timing model and the report's name (``..._s8.json``) follow it.
    ``seed`` other than 1 adds ``_seed<N>`` to the report's name. ``yosys_key``: the Yosys
    input's hash that this run must find (the report's ``yosys_key``; :func:`run_seeds` passes
    its own to each seed): a mismatch, the sources edited since, is a :class:`ToolError` before
    any tool runs, so a seed never re-synthesises and places another netlist than its siblings.
    ``design="macgrid"``: the plain int8 MAC grid of ``cfg.rows`` x ``cfg.rows`` cells
    (``hw.flow.macgrid``, the baseline) instead of the accelerator, with Yosys' own DSP mapping (its
    point: the DSP blocks' registers unused); reports ``macgrid_<array>_<device>...json``.
    ``"macgrid_pipelined"``: that grid with each product registered before its accumulator.
    """
    from .gen import generate

    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; known: {', '.join(DEVICES)}")
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}")
    if dsp not in DSP_POLICIES:
        raise ValueError(f"dsp must be one of {', '.join(DSP_POLICIES)}, got {dsp!r}")
    dev = DEVICES[device]
    if placer not in PLACERS:
        raise ValueError(f"placer must be one of {', '.join(PLACERS)}, got {placer!r}")
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, got {router!r}")
    if speed is not None and speed != dev.speed:
        if dev.family != "ecp5" or speed not in ECP5_SPEEDS:
            raise ValueError(f"speed grade {speed} is not offered for {device} "
                             f"(ECP5: {', '.join(map(str, ECP5_SPEEDS))}; iCE40: none)")
        dev = with_speed(dev, speed)
    if dev.family == "ice40" or design != "chanscale":
        # synth_ice40 -dsp: the UP5K's 8 SB_MAC16 are too few for any array anyway; the baseline
        # grids are Yosys' own DSP mapping by definition
        dsp = "all"
    out_dir, verilog_dir = Path(out_dir), Path(verilog_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    array = f"{cfg.rows}x{cfg.cols}"
    pnr = pnr and lut_map
    stem = report_stem(array, device, dev.speed, seed=seed, placer=placer, router=router, pnr=pnr,
                       lut_map=lut_map, route=route, design=design)
    report_path = out_dir / f"{stem}.json"
    lut_rows = pe_rows_in_luts(cfg.rows, dev, dsp) if design == "chanscale" else 0
    work = out_dir / (_design_prefix(design) + f"{array}_{dev.family}_{dsp}"
                      + (f"_lutpe{lut_rows}" if lut_rows else "") + ("" if lut_map else "_nolut"))
    work.mkdir(parents=True, exist_ok=True)

    rep = dict(design=design, array=array, device=device, part=dev.part, family=dev.family, dsp_policy=dsp,
               speed_grade=dev.speed, target_mhz=freq_mhz, pnr=pnr, routed=pnr and route, lut_map=lut_map,
               seed=seed, placer=placer, router=router, status="running", fits=None, fit=None,
               resources=None, capacity=dict(dev.capacity), fmax_mhz=None, meets_target=None,
               critical_path=None, times_s={},
               tools={"yosys": tool_version("yosys"), f"nextpnr-{dev.family}": tool_version(f"nextpnr-{dev.family}")},
               config=cfg.to_dict() if design == "chanscale" else dict(rows=cfg.rows, cols=cfg.cols),
               files={}, error=None)
    t_all = time.time()
    try:
        t = time.time()
        ports = None
        if design != "chanscale":
            from .macgrid import MacGrid, generate_macgrid
            grid = MacGrid(cfg.rows, pipelined=design == "macgrid_pipelined")
            vpath = generate_macgrid(grid, work)
            ports = ports_of(grid)
        elif dev.family == "ecp5" and dsp != "all":  # MULT18X18D instances (hw/gateware/dsp.py)
            from ..gateware.dsp import Ecp5Dsp
            vpath = generate(cfg, work, f"chanscale_{array}_ecp5", platform=Ecp5Dsp(cfg.rows, lut_rows))
        else:
            vpath = generate(cfg, verilog_dir)
        rep["times_s"]["generate"] = round(time.time() - t, 1)
        top = vpath.stem
        wpath = work / f"{WRAPPER_TOP}.v"
        rep["wrapper"] = write_wrapper(cfg, top, wpath, global_reset=bool(dev.reset_pin), ports=ports)
        log(f"[synth] {array} on {device}: Verilog {vpath} ({rep['times_s']['generate']} s)")

        stat_json = work / "stat.json"
        netlist = work / "netlist.json"
        key_file = work / "key.txt"
        def rel(p):  # every path a tool sees is relative to `work` (see run_tool)
            return os.path.relpath(Path(p).resolve(), work.resolve())

        script = yosys_script(dev.family, [rel(vpath), rel(wpath)], WRAPPER_TOP,
                              rel(stat_json), rel(netlist) if lut_map else None, dsp, lut_map)
        rep["lut_pe_rows"] = lut_rows
        if lut_rows and dsp == "datapath":
            log(f"[synth] {cfg.rows * cfg.rows + 2 * cfg.rows} datapath multipliers, {dev.capacity['dsp']} DSP "
                f"blocks: the last {lut_rows} PE row(s) use LUT multipliers")
        key = _sha(vpath.read_bytes(), wpath.read_bytes(), script, rep["tools"]["yosys"])
        rep["yosys_key"] = key
        if yosys_key is not None and key != yosys_key:
            raise ToolError("the Verilog differs from the netlist this run was started for (were the sources "
                            "edited after Yosys ran?); run `python -m hw.flow.synth ... --seeds` again")
        cached = (use_cache and key_file.exists() and key_file.read_text().strip() == key
                  and stat_json.exists() and (netlist.exists() or not lut_map))
        if cached:
            rep["times_s"]["yosys"] = json.loads((work / "yosys_time.json").read_text())["seconds"]
            rep["yosys_cached"] = True
            log(f"[synth] Yosys: cached netlist in {work} (took {rep['times_s']['yosys']} s)")
        else:
            key_file.unlink(missing_ok=True)
            ys = work / "synth.ys"
            ys.write_text(script)
            log(f"[synth] Yosys ({'synth_ice40' if dev.family == 'ice40' else 'synth_ecp5'}, dsp={dsp}) ...")
            secs = run_tool("yosys", ["-q", "-l", "yosys.log", ys.name], work / "yosys.out", timeout, work)
            rep["times_s"]["yosys"] = round(secs, 1)
            _write_json(work / "yosys_time.json", {"seconds": round(secs, 1)})
            key_file.write_text(key + "\n")
            rep["yosys_cached"] = False
        rep["files"]["yosys_log"] = str(work / "yosys.log")
        cells = parse_stat(stat_json)
        rep["yosys_cells"] = cells
        res = resources_from_cells(dev.family, cells)
        rep["resources"] = res
        rep["resources_source"] = "yosys"
        verdict = fit_check(dev, res)
        log(f"[synth] Yosys: {res['luts']} LUT4 (lower bound), {res['ffs']} FF, {res['dsp']} DSP, "
            f"{res['bram']} BRAM ({rep['times_s']['yosys']} s)")
        if lut_map:
            paths = deep_paths(json.loads(netlist.read_text()), dev.family, DEEP_PATHS)
            rep["logic_depth"] = paths[0] if paths else None
            rep["deep_paths"] = [p["line"] for p in paths]
            if rep["logic_depth"]:
                log(f"[synth] deepest logic: {rep['logic_depth']['line']}")
        tool = f"nextpnr-{dev.family}"
        pins = []  # nextpnr's pin options, for packing and for placing
        if pnr:
            pins = ["--pcf-allow-unconstrained"] if dev.family == "ice40" else []
            constraints = pin_constraints(dev)
            if constraints:
                lpf = work / f"{device}.lpf"
                lpf.write_text(constraints)
                pins += ["--lpf", rel(lpf), "--lpf-allow-unconstrained"]
        if not verdict and pnr and res["luts"] > PACK_CHECK_SHARE * dev.capacity["luts"]:
            # near full: pack first; a packed count over the device is the verdict
            pack_log = work / f"{stem}_pack.log"
            log(f"[synth] {res['luts']} LUT4 of {dev.capacity['luts']}: nextpnr --pack-only first ...")
            secs = run_tool(tool, [*dev.pnr_args, "--json", rel(netlist), "--pack-only", "--log", rel(pack_log),
                                    "-q", *pins], work / f"{stem}_pack.out", timeout, work)
            rep["times_s"]["pack"] = round(secs, 1)
            rep["files"]["pack_log"] = str(pack_log)
            text = pack_log.read_text()
            verdict = pnr_overflow(text)
            if verdict:
                rep["resources"] = pnr_resources(rep, dev.family, res, pnr_log_summary(text)["utilization"])
                rep["resources_source"] = "nextpnr (packed)"
        if verdict:
            rep.update(fits=False, fit=verdict, status="does_not_fit")
            log(f"[synth] {verdict}")
        elif not lut_map:
            rep.update(fits=None, fit="LUTs not mapped: the hard blocks fit", status="ok")
        elif not pnr:
            rep.update(fits=None, fit="not placed (--no-pnr): hard blocks and the LUT lower bound fit",
                       status="ok")
        else:
            pnr_report = work / f"{stem}_pnr.json"
            pnr_log = work / f"{stem}_nextpnr.log"
            args = [*dev.pnr_args, "--json", rel(netlist), "--freq", f"{freq_mhz:g}", "--timing-allow-fail",
                    "--seed", str(seed), "--placer", placer, "--router", router, "--report", rel(pnr_report), "--log", rel(pnr_log),
                    "-q", *pins]
            pnr_sdf = work / f"{stem}.sdf"
            if not route:
                args.append("--no-route")  # Fmax from placed, unrouted delays: an estimate
            else:
                args += ["--sdf", rel(pnr_sdf)]  # every endpoint's timing (hw.flow.sta)
            log(f"[synth] {tool} {' '.join(dev.pnr_args)} --freq {freq_mhz:g} --placer {placer} --router {router} ...")
            rep["files"]["nextpnr_log"] = str(pnr_log)
            try:
                secs = run_tool(tool, args, work / f"{stem}_nextpnr.out", timeout, work)
            except ToolError:
                text = pnr_log.read_text() if pnr_log.exists() else ""
                summary = pnr_log_summary(text)
                rep["pnr_log_summary"] = summary
                verdict = pnr_overflow(text)
                if verdict is None:
                    if summary["placed"]:
                        # placed: it fits; keep the post-placement estimate for the report
                        rep["fits"] = True
                        rep["fit"] = "fits (placed; routing did not finish)"
                        rep["fmax_placed_estimate_mhz"] = summary["fmax_estimates_mhz"][0] \
                            if summary["fmax_estimates_mhz"] else None
                        rep["resources"] = pnr_resources(rep, dev.family, res, summary["utilization"])
                        rep["resources_source"] = "nextpnr (log)"
                    raise
                rep.update(fits=False, fit=verdict, status="does_not_fit")
                log(f"[synth] {verdict}")
            else:
                rep["times_s"]["nextpnr"] = round(secs, 1)
                pr = json.loads(pnr_report.read_text())
                util = pr.get("utilization", {})
                rep["pnr_utilization"] = util
                rep["resources"] = pnr_resources(rep, dev.family, res, util)
                rep["resources_source"] = "nextpnr"
                fmax = [v.get("achieved") for v in pr.get("fmax", {}).values() if v.get("achieved")]
                if not fmax:  # --no-route: the report has no timing; the log has the estimate
                    fmax = pnr_log_summary(pnr_log.read_text())["fmax_estimates_mhz"][-1:]
                rep["fmax_mhz"] = round(min(fmax), 2) if fmax else None
                rep["meets_target"] = rep["fmax_mhz"] is not None and rep["fmax_mhz"] >= freq_mhz
                rep["critical_path"] = critical_path(pr)
                rep.update(fits=True, fit="fits", status="ok")
                rep["files"]["nextpnr_report"] = str(pnr_report)
                if route:
                    rep["timing"] = endpoint_timing(pnr_sdf, 1e3 / freq_mhz)
                    rep["files"]["sdf"] = str(pnr_sdf)
                log(f"[synth] placed{' and routed' if route else ' (not routed: Fmax is an estimate)'}: Fmax {rep['fmax_mhz']} MHz (target {freq_mhz:g}), "
                    f"{secs:.0f} s")
                if rep["critical_path"]:
                    log(f"[synth] critical path: {rep['critical_path']['line']}")
                t = rep.get("timing") or {}
                if "failing" in t:
                    log(f"[synth] {t['failing']} of {t['endpoints']} endpoints short of {1e3 / freq_mhz:g} ns"
                        + "".join(f"; {g['start']} -> {g['end']} ({g['endpoints']}, {g['worst_slack_ns']} ns)"
                                  for g in t["groups"][:3]))
    except ToolError as e:
        rep.update(status="error", error=str(e))
        raise
    finally:
        rep["times_s"]["total"] = round(time.time() - t_all, 1)
        _write_json(report_path, rep)
        rep["report"] = str(report_path)
        log(f"[synth] wrote {report_path}")
    return rep


def main(argv=None) -> int:
    from model.outputs import dir_from_cli

    from ..contract.params import ARRAY_HELP, array_from_cli

    ap = OneLineParser(prog="python -m hw.flow.synth", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--array", default="8x8", help=ARRAY_HELP)
    ap.add_argument("--device", default="ecp5-45k", choices=sorted(DEVICES), help="FPGA")
    ap.add_argument("--design", default="chanscale", choices=DESIGNS,
                    help="chanscale (the accelerator, default) or macgrid: the plain int8 MAC grid of the same "
                         "size (multiply and accumulate in one cycle, Yosys' DSP mapping), the baseline; "
                         "macgrid_pipelined: that grid with its products registered")
    ap.add_argument("--no-pnr", action="store_true", help="stop after Yosys (resource counts only)")
    ap.add_argument("--freq", type=float, default=100.0, help="clock target in MHz (default 100)")
    ap.add_argument("--dsp", default="datapath", choices=DSP_POLICIES,
                    help="ECP5: which multipliers use MULT18X18D (default datapath: PE + requantizer; requant: the requantizer only, PEs in LUTs; all: every multiplier)")
    ap.add_argument("--seed", type=int, default=None,
                    help="nextpnr seed (default 1; another seed's report is ..._seedN.json)")
    ap.add_argument("--seeds", default=None, metavar="LIST",
                    help="place and route under each of these seeds (e.g. 1,2,3), in parallel; "
                         "writes each seed's report and ..._seeds.json with the best seed")
    ap.add_argument("--jobs", type=int, default=None,
                    help="with --seeds: nextpnr runs at a time (default: one per core)")
    ap.add_argument("--no-lut-map", action="store_true",
                    help="Yosys only, stopping before LUT mapping: exact DSP/BRAM/FF counts, fast")
    ap.add_argument("--no-route", action="store_true",
                    help="place only: Fmax and critical path from placed, unrouted delays (an estimate)")
    ap.add_argument("--placer", default=DEFAULT_PLACER, choices=PLACERS,
                    help=f"nextpnr placer (default {DEFAULT_PLACER})")
    ap.add_argument("--speed", type=int, default=None, choices=ECP5_SPEEDS,
                    help="ECP5 speed grade (default 6, the slowest; 8 is the fastest)")
    ap.add_argument("--router", default=DEFAULT_ROUTER, choices=ROUTERS,
                    help=f"nextpnr router (default {DEFAULT_ROUTER})")
    ap.add_argument("--timeout", type=float, default=3600.0,
                    help="seconds per tool run (default 3600; --seeds stretches it by jobs / cores when the runs "
                         "outnumber the cores)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="report folder (default build/synth)")
    ap.add_argument("--verilog-dir", default=str(DEFAULT_VERILOG), help="Verilog folder (default build/verilog)")
    ap.add_argument("--no-cache", action="store_true", help="rerun Yosys even if the netlist is cached")
    ap.add_argument("--yosys-key", default=None, help=argparse.SUPPRESS)  # --seeds' processes: see run_synth
    args = ap.parse_args(argv)
    cfg = array_from_cli(args.array)
    if cfg is None or not dir_from_cli(args.out, "--out") or not dir_from_cli(args.verilog_dir, "--verilog-dir"):
        return 2
    if not 0 < args.freq < 1e4:  # also refuses nan and inf
        print("error: --freq must be positive and below 10,000 (a target clock in MHz)", file=sys.stderr)
        return 2
    if not 0 < args.timeout < 1e7:
        print("error: --timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    # the option checks, each with what to write instead (exit 2)
    seeds, problem = None, None
    if args.seeds is not None:
        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as e:
            problem = str(e)
        else:
            if args.seed is not None or args.no_pnr or args.no_lut_map:
                problem = "--seeds places and routes each seed: drop --seed, --no-pnr and --no-lut-map"
            elif args.jobs is not None and args.jobs < 1:
                problem = "--jobs must be at least 1"
    elif args.jobs is not None:
        problem = "--jobs goes with --seeds"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    common = dict(out_dir=args.out, verilog_dir=args.verilog_dir, freq_mhz=args.freq, dsp=args.dsp,
                  timeout=args.timeout, router=args.router, placer=args.placer, speed=args.speed,
                  route=not args.no_route, use_cache=not args.no_cache, design=args.design)
    try:
        if seeds:
            summ = run_seeds(cfg, args.device, seeds, jobs=args.jobs, **common)
        else:
            rep = run_synth(cfg, args.device, pnr=not args.no_pnr, lut_map=not args.no_lut_map,
                            seed=1 if args.seed is None else args.seed, yosys_key=args.yosys_key, **common)
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # an option the device does not offer (e.g. --speed on an iCE40)
        print(f"error: {e}", file=sys.stderr)
        return 2
    def what(array):
        return array if args.design == "chanscale" else f"{args.design} {array}"

    if seeds:
        print(f"wrote {summ['report']}")
        if summ.get("fits") is False:
            print(f"{what(summ['array'])} on {summ['device']}: {summ['fit']}")
            return 0
        for r in summ["seeds"]:
            if r["fmax_mhz"]:  # a placed-only run has no critical path
                line = f"{r['fmax_mhz']:.2f} MHz" + (f", {r['critical_path']}" if r["critical_path"] else "")
            else:
                line = f"{r['status']}: {r['error'] or ''}"
            print(f"  seed {r['seed']}: {line}")
        if summ["timed"]:
            print(f"{what(summ['array'])} on {summ['part']}: best seed {summ['best_seed']} "
                  f"({summ['fmax_max_mhz']:.2f} MHz, report {summ['best_report']}); {summ['met']} of "
                  f"{summ['runs']} seeds meet {summ['target_mhz']:g} MHz; range {summ['fmax_min_mhz']:.2f}-"
                  f"{summ['fmax_max_mhz']:.2f} MHz, mean {summ['fmax_mean_mhz']:.2f}")
        return 1 if any(r["status"] == "error" for r in summ["seeds"]) else 0
    print(f"{what(rep['array'])} on {rep['device']}: " + (
        rep["fit"] if rep["fits"] is False else
        f"{rep['resources']['luts']} LUTs, {rep['resources']['ffs']} FFs, {rep['resources']['dsp']} DSP, "
        f"{rep['resources']['bram']} BRAM" + (f", Fmax {rep['fmax_mhz']} MHz" if rep["fmax_mhz"] else "")))
    return 0

if __name__ == "__main__":
    sys.exit(main())
