"""``python sw/host.py --trace``: the runtime manager and its baselines on a budget trace.

The library is every uniform width and every per-layer profile on the array's accuracy/cycles
or accuracy/energy front (validation accuracy), at every operating point of the chosen set. Its
costs come from one frame per profile on the model backend (the device's counters, which are
the same for every image: the schedule does not depend on the data). Frame i runs test image i;
it is correct when the golden model's prediction at the chosen profile is right for that image.

Policies, all on the same trace: ``manager`` (every profile and operating point, closed loop),
``full-max`` (full width at the fastest point), ``dvfs`` (full width, the manager choosing the
point), ``uniform-dvfs`` (uniform widths and points), ``profiles`` (every profile at the nominal
point) and ``oracle`` (the manager's library, knowing the trace; ``sw.manager.Oracle``).
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from model import golden, profiles
from sim.runner import BUILD
from sw import manager as mg
from sw.driver import Driver
from sw.energy import OPP_SETS, OPPS, energy
from sw.frames import SETTLE_US, BUS_CYCLES, frame_cost, frame_transactions, switch_cost
from sw.measure import RunConfig, measure_frames
from sw.model_device import BUS_TIMED, ModelBus
from sw.pareto import front

NOMINAL = {"dvfs": "nominal", "fpga": "fpga-100"}  # the point of the `profiles` baseline


def profile_counters(program, acfg, all_groups, image, classes) -> dict:
    """{groups: the device counters of one frame} on the model backend."""
    frames = [(RunConfig.of(g), image) for g in all_groups]
    s = asyncio.run(measure_frames(Driver(ModelBus(acfg), acfg), program, frames, classes))
    return {g: f["counters"] for g, f in zip(all_groups, s["frames"])}


def library(program, acfg, counters: dict, accuracy: dict, opp_names, classes: int) -> mg.Library:
    """Every (profile in ``counters``, operating point) with its costs and switch costs."""
    t = frame_transactions(program, classes)
    costs = [frame_cost(counters[g], g, OPPS[o], acfg, t) for g in counters for o in opp_names]
    n = len(costs)
    sw_us, sw_pj = np.zeros((n, n)), np.zeros((n, n))
    for a, ca in enumerate(costs):
        for b, cb in enumerate(costs):
            sw_us[a, b], sw_pj[a, b] = switch_cost(ca, cb, program, acfg)
    return mg.Library([c.groups for c in costs], [c.opp for c in costs],
                      np.array([accuracy[c.groups] for c in costs]), np.array([c.transfer_us for c in costs]),
                      np.array([c.compute_us for c in costs]), np.array([c.energy_pj for c in costs]), sw_us, sw_pj)


def chosen_profiles(counters: dict, accuracy: dict, acfg) -> list[tuple]:
    """Uniform widths and the profiles on the accuracy/cycles or accuracy/energy front."""
    gs = list(counters)
    cyc = [counters[g]["BUSY_CYCLES"] for g in gs]
    en = [energy(counters[g], acfg, OPPS["nominal"])["total"] for g in gs]
    on_c = front([(c, accuracy[g]) for c, g in zip(cyc, gs)])
    on_e = front([(e, accuracy[g]) for e, g in zip(en, gs)])
    return [g for g, a, b in zip(gs, on_c, on_e) if a or b or len(set(g)) == 1]


def predictions(export, images, groups, cache_dir: Path | None) -> np.ndarray:
    """Golden-model class predictions at ``groups`` (cached per export digest and image set)."""
    key = hashlib.sha256(export.meta["digest"].encode() + np.ascontiguousarray(images).tobytes()).hexdigest()[:16]
    path = cache_dir / f"pred_{key}_{profiles.key(groups).replace(',', '-')}.npy" if cache_dir else None
    if path and path.is_file():
        return np.load(path)
    pred = golden.run(export, images, groups=groups, keep_acts=False).logits.argmax(axis=1).astype(np.int16)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy")  # concurrent runs write their own
        with os.fdopen(fd, "wb") as f:
            np.save(f, pred)
        os.replace(tmp, path)
    return pred


def policies(lib: mg.Library, opp_set: str) -> dict:
    """{name: (policy object, its library)}: the manager, the baselines and the oracle."""
    full = max(lib.groups, key=sum)
    fastest = max(OPP_SETS[opp_set], key=lambda o: OPPS[o].mhz)
    uni = np.array([len(set(g)) == 1 for g in lib.groups])
    is_full = np.array([g == full for g in lib.groups])
    nominal = np.array([o == NOMINAL[opp_set] for o in lib.opps])
    fm = int(np.flatnonzero(is_full & np.array([o == fastest for o in lib.opps]))[0])
    out = {"manager": mg.Manager(lib), "full-max": mg.Manager(lib, fixed=fm),
           "dvfs": mg.Manager(lib.subset(is_full)), "uniform-dvfs": mg.Manager(lib.subset(uni)),
           "profiles": mg.Manager(lib.subset(nominal)), "oracle": mg.Oracle(lib)}
    return out


def dynamic_range(program, acfg, counters: dict, classes: int) -> dict:
    """Latency and energy ratios (slowest / fastest, most / least) over every (profile,
    operating point) pair, per operating-point set."""
    t = frame_transactions(program, classes)
    out = {}
    for name, opps in OPP_SETS.items():
        c = [frame_cost(counters[g], g, OPPS[o], acfg, t) for g in counters for o in opps]
        lat = [x.latency_us() for x in c]
        en = [x.energy_pj for x in c]
        out[name] = dict(latency_min_us=round(min(lat), 2), latency_max_us=round(max(lat), 2),
                         latency_x=round(max(lat) / min(lat), 2), energy_min_nj=round(min(en) / 1e3, 1),
                         energy_max_nj=round(max(en) / 1e3, 1), energy_x=round(max(en) / min(en), 2))
    return out


def run_trace(export, program, acfg, trace_spec, frames, opp_set, test, val_acc: dict, test_acc: dict,
              progress=None, cache: bool = True) -> dict:
    """The whole --trace job on the model backend: library, trace, every policy. Returns the
    document (``policies`` rows, per-frame arrays under ``runs``)."""
    from sw import traces
    classes = export.heads[export.groups].out_channels
    G, L = export.groups, len(export.convs)
    every = profiles.useful(G, L)
    counters = profile_counters(program, acfg, every, test.images[0], classes)
    keep = chosen_profiles(counters, val_acc, acfg)
    lib = library(program, acfg, {g: counters[g] for g in keep}, val_acc, OPP_SETS[opp_set], classes)
    full = max(keep, key=sum)
    ref = frame_cost(counters[full], full, OPPS["nominal"], acfg, frame_transactions(program, classes))
    trace = traces.resolve(trace_spec, frames, ref.latency_us(), ref.energy_pj)
    n_img = min(len(trace), len(test))
    cache_dir = BUILD / "runtime" if cache else None
    images = test.images[:n_img]
    with ProcessPoolExecutor(min(2, len(keep))) as pool:  # the golden model is one core per profile
        jobs = {g: pool.submit(predictions, export, images, g, cache_dir) for g in keep}
        correct = {}
        for g, job in jobs.items():
            correct[g] = job.result() == test.labels[:n_img]
            if progress:
                progress(f"golden predictions {profiles.key(g)}")
    runs, rows = {}, []
    for name, pol in policies(lib, opp_set).items():
        runs[name] = mg.simulate(pol, pol.lib, trace, correct)
        runs[name]["lib"] = pol.lib
        rows.append(mg.summary(name, pol.lib, runs[name]))
    return dict(array=f"{acfg.rows}x{acfg.cols}", opp_set=opp_set,
                operating_points=[vars(OPPS[o]) for o in OPP_SETS[opp_set]],
                bus_cycles=BUS_CYCLES, settle_us=SETTLE_US,
                trace=dict(name=trace.name, frames=len(trace), ref_latency_us=round(ref.latency_us(), 2),
                           ref_energy_nj=round(ref.energy_pj / 1e3, 1)),
                library=[dict(groups=list(g), opp=o, val_accuracy=float(a), test_accuracy=test_acc.get(g),
                              transfer_us=round(float(tu), 3), compute_us=round(float(cu), 3),
                              energy_nj=round(float(e) / 1e3, 2))
                         for g, o, a, tu, cu, e in zip(lib.groups, lib.opps, lib.accuracy, lib.transfer_us,
                                                       lib.compute_us, lib.energy_pj)],
                dynamic_range=dynamic_range(program, acfg, counters, classes), policies=rows,
                runs=runs, _trace=trace, _counters=counters)


def frame_rows(doc: dict, policy: str) -> list[dict]:
    """Per frame of one policy: chosen profile and point, latency, energy, correct, deadline met."""
    r, tr = doc["runs"][policy], doc["_trace"]
    lib = r["lib"]
    return [dict(policy=policy, frame=i, groups=profiles.key(lib.groups[k]), opp=lib.opps[k],
                 deadline_us=round(float(tr.deadline_us[i]), 3), share=float(tr.share[i]),
                 latency_us=round(float(r["latency_us"][i]), 3), energy_nj=round(float(r["energy_pj"][i]) / 1e3, 3),
                 correct=bool(r["correct"][i]), deadline_met=bool(r["met"][i]))
            for i, k in enumerate(r["pick"])]


def table_text(doc: dict) -> str:
    """The per-policy table and the dynamic range, as text."""
    t = doc["trace"]
    lines = [f"trace {t['name']}: {t['frames']:,} frames on the {doc['array']} array, operating points "
             f"{doc['opp_set']} ({', '.join(o['name'] for o in doc['operating_points'])}); reference: full width at "
             f"nominal {t['ref_latency_us']} us, {t['ref_energy_nj']:,} nJ per frame",
             f"{'policy':<13} {'misses %':>8} {'over budget %':>13} {'accuracy %':>10} {'energy mJ':>9} "
             f"{'mean us':>8} {'worst us':>9} {'switches':>8}"]
    for r in doc["policies"]:
        lines.append(f"{r['policy']:<13} {r['deadline_misses_pct']:>8.2f} {r['energy_over_budget_pct']:>13.2f} "
                     f"{100 * r['accuracy']:>10.2f} {r['energy_uj'] / 1e3:>9.2f} {r['mean_latency_us']:>8.1f} "
                     f"{r['worst_latency_us']:>9.1f} {r['switches']:>8}")
    for name, d in doc["dynamic_range"].items():
        lines.append(f"dynamic range over every (profile, operating point), {name}: latency x{d['latency_x']} "
                     f"({d['latency_min_us']}-{d['latency_max_us']} us), energy x{d['energy_x']} "
                     f"({d['energy_min_nj']:,}-{d['energy_max_nj']:,} nJ)")
    return "\n".join(lines)


def json_doc(doc: dict) -> dict:
    """The --json document: everything but the internals, per-frame columns per policy."""
    out = {k: v for k, v in doc.items() if not k.startswith("_") and k != "runs"}
    out["frames"] = {}
    for name in doc["runs"]:
        rows = frame_rows(doc, name)
        out["frames"][name] = {k: [r[k] for r in rows] for k in rows[0] if k not in ("policy",)}
    return out


def csv_text(doc: dict) -> str:
    from sw.report import table_csv
    return table_csv([r for name in doc["runs"] for r in frame_rows(doc, name)])


def plot_pngs(doc: dict) -> dict[str, bytes]:
    """trace_<name>.png: deadline and latency, chosen configuration and energy over the frames,
    for the manager and the oracle."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sw.report import png_bytes
    tr = doc["_trace"]
    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    x = np.arange(len(tr))
    axes[0].plot(x, tr.deadline_us, "k-", lw=1, label="deadline")
    for name, style in (("manager", "C0"), ("oracle", "C1")):
        r = doc["runs"][name]
        axes[0].plot(x, r["latency_us"], color=style, lw=0.6, label=f"{name} latency")
        lib = r["lib"]
        axes[1].plot(x, [sum(lib.groups[k]) for k in r["pick"]], color=style, lw=0.8, drawstyle="steps-post",
                     label=name)
        axes[2].plot(x, [OPPS[lib.opps[k]].mhz for k in r["pick"]], color=style, lw=0.8, drawstyle="steps-post",
                     label=name)
        axes[3].plot(x, r["energy_pj"] / 1e3, color=style, lw=0.6, label=name)
    if not np.isnan(tr.energy_uj).all():
        axes[3].plot(x, tr.energy_uj * 1e3, "k-", lw=1, label="budget")
    ax2 = axes[0].twinx()
    ax2.plot(x, tr.share, color="0.6", lw=0.8, ls="--")
    ax2.set_ylabel("share (hidden)", color="0.5")
    ax2.set_ylim(0, 1.05)
    axes[0].set_ylabel("latency (us)")
    axes[1].set_ylabel("groups (sum)")
    axes[2].set_ylabel("clock (MHz)")
    axes[3].set_ylabel("energy (nJ)")
    axes[3].set_xlabel("frame")
    for ax in axes:
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
    axes[0].set_title(f"trace {tr.name}, {doc['array']} array, {doc['opp_set']} operating points")
    fig.tight_layout()
    return {f"trace_{tr.name}.png": png_bytes(fig)}


def add_outputs(out, doc: dict, json_path=None, csv_path=None, plot_dir=None) -> None:
    import json
    if json_path:
        out.text(json_path, json.dumps(json_doc(doc), indent=1))
    if csv_path:
        out.text(csv_path, csv_text(doc))
    if plot_dir:
        out.files(plot_dir, plot_pngs(doc))


def verify_on_rtl(doc: dict, backend: str, export, program, acfg, test, n: int, waves: bool = False) -> dict:
    """The manager's first ``n`` frames on the RTL: the width written as it decided (no reload),
    every frame's logits against the golden model and its counters against the model backend's
    frame and the counters the trace was charged."""
    from sw.rtl import run_rtl
    r = doc["runs"]["manager"]
    lib = r["lib"]
    picks = [lib.groups[k] for k in r["pick"][:n]]
    configs = list(dict.fromkeys(picks))
    images = test.images[:len(picks)]
    frames = [(configs.index(g), i) for i, g in enumerate(picks)]
    classes = export.heads[export.groups].out_channels
    if backend == "native":
        from sim import native
        rtl = native.session(acfg, lambda d: measure_frames(d, program, [(RunConfig.of(g), images[i]) for i, g in
                                                                          enumerate(picks)], classes))
    else:
        rtl = run_rtl(backend, acfg, program, [RunConfig.of(g) for g in configs], images, classes, waves=waves,
                      frames=frames)
    model = asyncio.run(measure_frames(Driver(ModelBus(acfg), acfg), program,
                                       [(RunConfig.of(g), images[i]) for i, g in enumerate(picks)], classes))
    want = {g: golden.run(export, images, groups=g, keep_acts=False).logits for g in configs}
    problems = []
    for i, (g, fr, fm) in enumerate(zip(picks, rtl["frames"], model["frames"])):
        if fr["logits"] != want[g][i].tolist():
            problems.append(f"frame {i} ({profiles.key(g)}): RTL logits {fr['logits']} != golden {want[g][i].tolist()}")
        for k in sorted(set(fr["counters"]) - set(BUS_TIMED)):
            if fr["counters"][k] != fm["counters"][k]:
                problems.append(f"frame {i} ({profiles.key(g)}) {k}: RTL {fr['counters'][k]}, model {fm['counters'][k]}")
            if k.endswith(("_RD", "_WR")) or k in ("BUSY_CYCLES", "MACS"):
                if fr["counters"][k] != doc["_counters"][g][k]:
                    problems.append(f"frame {i} ({profiles.key(g)}) {k}: RTL {fr['counters'][k]}, charged "
                                    f"{doc['_counters'][g][k]}")
    sim = rtl["sim"]
    # the native harness's bus master is its own, not the cocotbext-axi master BUS_CYCLES describes
    measured = {k: round(v, 3) for k, v in sim["bus_cycles"].items()} if "bus_cycles" in sim else None
    if measured is not None and measured != {k: float(v) for k, v in BUS_CYCLES.items()}:
        problems.append(f"bus cycles per transaction on the RTL {measured} differ from sw.frames.BUS_CYCLES "
                        f"{BUS_CYCLES}")
    return dict(backend=backend, frames=len(picks), width_switches=sum(f["switched"] for f in rtl["frames"]) - 1,
                profiles=[profiles.key(g) for g in configs], bit_exact=not problems, problems=problems[:20],
                bus_cycles=measured, simulation={k: sim[k] for k in ("simulator", "wall_s", "sim_cycles", "cycles_per_s")})
