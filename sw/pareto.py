"""The accuracy/cost Pareto front over per-layer profiles (``python sw/host.py --pareto``).

Every useful profile (model.profiles) of an export, with its int8 accuracy on the validation split
(for choosing) and the test set (for reporting), its MACs, and the exact cycles, latency and
energy of one image on a concrete array from the device's counters (the model backend). A
profile is on a front when no other profile is at least as accurate (validation) for no more of
that cost, and better in one of the two.
"""
from __future__ import annotations


from . import report as rep
from .report import png_bytes, table_csv

COSTS = {"cycles": "cycles", "energy": "energy_pj"}  # front name -> cost field


def front(points: list[tuple[float, float]]) -> list[bool]:
    """Per (cost, accuracy) point: whether no other point dominates it (cost <= and accuracy >=,
    one of them strictly). Equal points are both on the front."""
    flags = []
    for i, (c, a) in enumerate(points):
        flags.append(not any((c2 <= c and a2 >= a) and (c2 < c or a2 > a)
                             for j, (c2, a2) in enumerate(points) if j != i))
    return flags


def rows(report: dict, accuracy: dict) -> list[dict]:
    """One row per configuration of a host report (sw.report.build): ``accuracy[name]`` =
    (validation accuracy, test accuracy). Front flags use the validation accuracy."""
    out = []
    for c in report["configs"]:
        t = c["total"]
        val, test = accuracy[c["name"]]
        out.append(dict(groups=c["groups"], profile=",".join(map(str, c["groups"])),
                        uniform=c["uniform_groups"] is not None, val_accuracy=val, test_accuracy=test,
                        macs=t["macs"], cycles=t["cycles"], latency_us=t["latency_us"],
                        energy_pj=t["energy_total_pj"]))
    for name, field in COSTS.items():
        for r, on in zip(out, front([(r[field], r["val_accuracy"]) for r in out])):
            r[f"front_{name}"] = on
    return out


def document(report: dict, accuracy: dict, source: str) -> dict:
    """What --pareto writes: the array and operating point, where the accuracy comes from, one
    object per profile and the per-width comparison."""
    table = rows(report, accuracy)
    return dict(array=report["array"], operating_point=report["operating_point"], accuracy_source=source,
                profiles=table, versus_uniform=versus_uniform(table))


def versus_uniform(table: list[dict]) -> list[dict]:
    """For each uniform width below the widest: the most accurate profile (validation) with no more
    cycles, and how its test accuracy compares (Yang et al.'s claim, per width)."""
    uni = sorted((r for r in table if r["uniform"]), key=lambda r: r["cycles"])
    out = []
    for u in uni[:-1]:
        fits = [r for r in table if r["cycles"] <= u["cycles"]]
        best = max(fits, key=lambda r: (r["val_accuracy"], -r["cycles"]))
        out.append(dict(uniform=u["profile"], uniform_cycles=u["cycles"], uniform_test=u["test_accuracy"],
                        best=best["profile"], best_cycles=best["cycles"], best_test=best["test_accuracy"],
                        gain_points=round(100 * (best["test_accuracy"] - u["test_accuracy"]), 2)))
    return out


def table_text(doc: dict) -> str:
    lines = [f"{'profile':>9} {'val':>7} {'test':>7} {'MACs':>10} {'cycles':>8} {'lat us':>8} {'energy nJ':>10}  front",
             ]
    for r in sorted(doc["profiles"], key=lambda r: r["cycles"]):
        flags = ",".join(n for n in COSTS if r[f"front_{n}"])
        lines.append(f"{r['profile']:>9} {100 * r['val_accuracy']:6.2f}% {100 * r['test_accuracy']:6.2f}% "
                     f"{r['macs']:>10,} {r['cycles']:>8,} {r['latency_us']:>8.1f} {r['energy_pj'] / 1000:>10.1f}  "
                     f"{flags}{'  (uniform)' if r['uniform'] else ''}")
    for v in doc["versus_uniform"]:
        lines.append(f"uniform {v['uniform']} ({v['uniform_cycles']:,} cycles, {100 * v['uniform_test']:.2f} %): "
                     f"best profile within its cycles {v['best']} ({v['best_cycles']:,} cycles, "
                     f"{100 * v['best_test']:.2f} %), {v['gain_points']:+.2f} points")
    return "\n".join(lines)


def csv_text(doc: dict) -> str:
    """One row per profile (its ``groups`` list is the ``profile`` column)."""
    return table_csv([{k: v for k, v in r.items() if k != "groups"} for r in doc["profiles"]])


def add_outputs(out, doc: dict, json_path=None, csv_path=None, plot_dir=None) -> None:
    """--json, --csv and --plot of a --pareto run, as parts of one ``Outputs``."""
    rep.add_outputs(out, doc, json_path, csv_path, plot_dir, csv_of=csv_text, pngs_of=plot_pngs)


def plot_pngs(doc: dict) -> dict[str, bytes]:
    """pareto_cycles.png and pareto_energy.png: every profile a point (uniform widths marked), the
    front a line, test accuracy on the y axis."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pngs = {}
    for name, field in COSTS.items():
        scale = 1000 if field == "energy_pj" else 1
        fig, ax = plt.subplots(figsize=(6, 4.5))
        rs = doc["profiles"]
        ax.scatter([r[field] / scale for r in rs if not r["uniform"]],
                   [100 * r["test_accuracy"] for r in rs if not r["uniform"]], s=14, c="tab:gray", label="profiles")
        ax.scatter([r[field] / scale for r in rs if r["uniform"]],
                   [100 * r["test_accuracy"] for r in rs if r["uniform"]], s=40, marker="s", c="tab:blue",
                   label="uniform widths")
        on = sorted((r for r in rs if r[f"front_{name}"]), key=lambda r: r[field])
        ax.plot([r[field] / scale for r in on], [100 * r["test_accuracy"] for r in on], "-o", c="tab:red", ms=4,
                label="front (chosen on validation)")
        for r in on:
            ax.annotate(r["profile"], (r[field] / scale, 100 * r["test_accuracy"]), textcoords="offset points",
                        xytext=(4, -10), fontsize=7)
        ax.set_xlabel("cycles per image" if field == "cycles" else "energy per image (nJ)")
        ax.set_ylabel("int8 test accuracy (%)")
        ax.set_title(f"profiles on the {doc['array']} array, {doc['operating_point']['name']} operating point")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        pngs[f"pareto_{name}.png"] = png_bytes(fig)
    return pngs
