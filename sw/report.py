"""Turn a measurement session's device counters into the report: per-layer rows and totals per
configuration, energy by component at an operating point, the dynamic-range summary, and the
JSON / CSV / PNG outputs (field names listed in the README; keep them stable)."""
from __future__ import annotations

import csv
import io
import json

from model.outputs import Outputs

from .energy import COMPONENTS, energy

BUFFERS = ("IMG", "ACTA", "ACTB", "WGT", "PRM", "ACC", "LINE", "LOGIT")


def _row(name, kind, gin, gout, c, acfg, opp, bus_bytes=0):
    n2 = acfg.rows * acfg.cols
    cycles = c.get("BUSY_CYCLES", 0)
    e = energy(c, acfg, opp, cycles=cycles, bus_bytes=bus_bytes)
    row = dict(layer=name, kind=kind, groups_in=gin, groups_out=gout, macs=c.get("MACS", 0), cycles=cycles,
               utilization=round(c.get("MACS", 0) / (cycles * n2), 4) if cycles else 0.0,
               active_pe_cycles=c.get("MACS", 0), gated_pe_cycles=c.get("GATED_PE_CYCLES", 0),
               stall_cycles=c.get("STALL_CYCLES", 0),
               sram_reads=sum(c.get(f"{b}_RD", 0) for b in BUFFERS),
               sram_writes=sum(c.get(f"{b}_WR", 0) for b in BUFFERS),
               offchip_bytes=bus_bytes, latency_us=round(e["latency_us"], 3))
    for b in BUFFERS:
        row[f"{b.lower()}_reads"] = c.get(f"{b}_RD", 0)
        row[f"{b.lower()}_writes"] = c.get(f"{b}_WR", 0)
    for comp in COMPONENTS:
        row[f"energy_{comp}_pj"] = round(e[comp], 1)
    row["energy_total_pj"] = round(e["total"], 1)
    return row


def build(session: dict, program, export, acfg, opp, golden_logits, accuracy: dict, backend: str) -> dict:
    """The report dict. ``golden_logits[config name]`` holds the golden logits of the images run;
    ``accuracy[config name]`` = (int8 accuracy, evaluation images)."""
    classes = export.heads[export.groups].out_channels
    names = [layer.name for layer in export.convs] + [
        f"classifier[k={d['select_k']}]" if d["select_k"] else "classifier" for d in program.descs[program.n_convs:]]
    configs = []
    for c in session["configs"]:
        groups = tuple(c["groups"])
        chan = program.chan(groups)
        layers = []
        for j, cnt in enumerate(c["layers"]):
            d = program.descs[j]
            if d["select_k"] and d["select_k"] != chan[j][0]:
                continue  # a per-width head that this configuration skips (1 cycle)
            kind = "conv" if j < program.n_convs else "classifier"
            layers.append(_row(names[j], kind, chan[j][0] if j else 0, chan[j][1] if kind == "conv" else 0,
                               cnt, acfg, opp))
        first = c["images"][0]
        io_bytes = first["counters"]["BUS_WR_BYTES"] + 4 * classes  # image + control in, logits out
        total = _row("network", "network", 0, 0, first["counters"], acfg, opp, bus_bytes=io_bytes)
        matched = [img["logits"] == list(map(int, ref)) for img, ref in zip(c["images"], golden_logits[c["name"]])]
        acc, n_eval = accuracy[c["name"]]
        configs.append(dict(name=c["name"], groups=list(groups), uniform_groups=c["uniform"],
                            width=(c["uniform"] / export.groups) if c["uniform"] else None,
                            int8_accuracy=acc, eval_images=n_eval, images_run=len(matched),
                            outputs_match_golden=all(matched), layer_cycles=first["layer_cycles"],
                            layers=layers, total=total))
    load = session["load"]
    return dict(backend=backend, array=f"{acfg.rows}x{acfg.cols}", operating_point=vars(opp),
                one_time_load=dict(bus_write_bytes=load["BUS_WR_BYTES"],
                                   energy_offchip_pj=round(energy(load, acfg, opp, cycles=0,
                                                                  bus_bytes=load["BUS_WR_BYTES"])["offchip"], 1)),
                configs=configs, summary=summary(configs), simulation=session.get("sim"))


def summary(configs) -> dict:
    """Dynamic range: full-width over quarter-width (or widest over narrowest uniform) ratios."""
    uni = sorted((c for c in configs if c["uniform_groups"]), key=lambda c: c["uniform_groups"])
    if len(uni) < 2:
        return {}
    lo, hi = uni[0], uni[-1]
    t_lo, t_hi = lo["total"], hi["total"]
    return dict(narrow=lo["name"], wide=hi["name"],
                cycle_ratio=round(t_hi["cycles"] / t_lo["cycles"], 2),
                latency_ratio=round(t_hi["latency_us"] / t_lo["latency_us"], 2),
                energy_ratio=round(t_hi["energy_total_pj"] / t_lo["energy_total_pj"], 2),
                accuracy_gain_points=round(100 * (hi["int8_accuracy"] - lo["int8_accuracy"]), 2))


def table(report: dict) -> str:
    """The per-layer table and totals per configuration, as text."""
    lines = []
    hdr = (f"{'layer':<18} {'gin':>3} {'gout':>4} {'MACs':>10} {'cycles':>8} {'util':>6} {'gated PE-c':>11} "
           f"{'SRAM r/w':>13} {'energy nJ':>9} {'lat us':>8}")
    for c in report["configs"]:
        w = f"width {c['width']:g}" if c["width"] else f"groups {c['groups']}"
        match = "match golden" if c["outputs_match_golden"] else "MISMATCH vs golden"
        lines.append(f"\n== {c['name']} ({w}): int8 accuracy {100 * c['int8_accuracy']:.2f}% on {c['eval_images']} "
                     f"images; {c['images_run']} image(s) on {report['backend']}: {match}")
        lines.append(hdr)
        for r in c["layers"] + [c["total"]]:
            lines.append(f"{r['layer']:<18} {r['groups_in']:>3} {r['groups_out']:>4} {r['macs']:>10,} {r['cycles']:>8,} "
                         f"{r['utilization']:>6.3f} {r['gated_pe_cycles']:>11,} "
                         f"{str(r['sram_reads']) + '/' + str(r['sram_writes']):>13} "
                         f"{r['energy_total_pj'] / 1000:>9.1f} {r['latency_us']:>8.1f}")
    s = report["summary"]
    if s:
        lines.append(f"\ndynamic range {s['wide']} / {s['narrow']}: cycles x{s['cycle_ratio']}, latency "
                     f"x{s['latency_ratio']}, energy x{s['energy_ratio']}, accuracy +{s['accuracy_gain_points']} points")
    op = report["operating_point"]
    lines.append(f"operating point {op['name']}: {op['volts']} V, {op['mhz']} MHz; one-time weight load "
                 f"{report['one_time_load']['bus_write_bytes']:,} bus bytes")
    sim = report.get("simulation")
    if sim:
        lines.append(f"simulation: {sim['simulator']}, {sim['sim_cycles']:,} clock cycles in {sim['wall_s']} s "
                     f"({sim['cycles_per_s']:,} cycles/s; {sim['bus_writes']:,} AXI4-Lite writes, "
                     f"{sim['bus_reads']:,} reads)")
    return "\n".join(lines)


def json_text(report: dict) -> str:
    return json.dumps(report, indent=2)


def csv_rows(report: dict) -> list[dict]:
    rows = []
    for c in report["configs"]:
        for r in c["layers"] + [c["total"]]:
            rows.append(dict(config=c["name"], width=c["width"], int8_accuracy=c["int8_accuracy"],
                             outputs_match_golden=c["outputs_match_golden"], **r))
    return rows


def csv_text(report: dict) -> str:
    return table_csv(csv_rows(report))


def table_csv(rows: list[dict]) -> str:
    """Rows of equal keys as CSV text, one column per key of the first row."""
    f = io.StringIO(newline="")
    wr = csv.DictWriter(f, fieldnames=list(rows[0]))
    wr.writeheader()
    wr.writerows(rows)
    return f.getvalue()


def add_outputs(out: Outputs, report: dict, json_path=None, csv_path=None, plot_dir=None,
                csv_of=None, pngs_of=None) -> None:
    """A host run's --json, --csv and --plot files, as parts of one ``Outputs`` (written together
    or not at all). ``csv_of`` / ``pngs_of`` render another kind of document (default: the
    per-configuration report's)."""
    if json_path:
        out.text(json_path, json_text(report))
    if csv_path:
        out.text(csv_path, (csv_of or csv_text)(report))
    if plot_dir:
        out.files(plot_dir, (pngs_of or plot_pngs)(report))


def png_bytes(fig) -> bytes:
    """A matplotlib figure as PNG bytes (and closed)."""
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, dpi=120, format="png")
    plt.close(fig)
    return buf.getvalue()


def plot_pngs(report: dict) -> dict[str, bytes]:
    """accuracy_vs_energy.png, accuracy_vs_latency.png, cycles_per_layer.png and
    utilization_per_layer.png, rendered in memory: {file name: PNG bytes}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cs = report["configs"]
    pngs = {}

    def save(fig, fname):
        pngs[fname] = png_bytes(fig)
    for key, label, fname in (("energy_total_pj", "energy per image (nJ)", "accuracy_vs_energy.png"),
                              ("latency_us", "latency per image (us)", "accuracy_vs_latency.png")):
        fig, ax = plt.subplots(figsize=(5, 4))
        for c in cs:
            x = c["total"][key] / (1000 if key == "energy_total_pj" else 1)
            ax.scatter(x, 100 * c["int8_accuracy"], marker="o" if c["uniform_groups"] else "s")
            ax.annotate(c["name"], (x, 100 * c["int8_accuracy"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("int8 accuracy (%)")
        ax.set_title(f"{report['array']} array, {report['operating_point']['name']} operating point")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        save(fig, fname)
    for key, label, fname in (("cycles", "cycles", "cycles_per_layer.png"),
                              ("utilization", "PE utilization", "utilization_per_layer.png")):
        fig, ax = plt.subplots(figsize=(6, 4))
        layer_names = [r["layer"].split("[")[0] for r in cs[0]["layers"]]
        width = 0.8 / len(cs)
        for i, c in enumerate(cs):
            vals = [r[key] for r in c["layers"]]
            ax.bar([j + i * width for j in range(len(vals))], vals, width=width, label=c["name"])
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(layer_names))])
        ax.set_xticklabels(layer_names)
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
        ax.set_title(f"{label} per layer, {report['array']} array")
        fig.tight_layout()
        save(fig, fname)
    return pngs
