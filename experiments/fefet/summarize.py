#!/usr/bin/env python3
"""Markdown tables of the fefet study from its raw CSV (experiments/reproduce.sh fefet writes
experiments/fefet/results/{full,quick}.csv from the `bnas measure MODEL fefet ...` outputs of run.sh:
runs NAME.fefet, test set with BERA, and NAME.val, the validation sweeps). The reference of the
target is the PLAIN network's clean test accuracy (fc-plain for fc-*, vgg3-plain for vgg3-*):
column 'min - ref'. A second table lists the validation sweeps that the recipe search of run.sh
fc-sweep chooses by; its reference is the plain network's clean validation accuracy.
usage: python3 experiments/fefet/summarize.py CSV"""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import repro  # noqa: E402

csv = sys.argv[1] if len(sys.argv) > 1 else "experiments/fefet/results/full.csv"


def load(kind):
    """[(model name, {metric: value})] of the CSV's runs NAME.kind, sorted by name."""
    return sorted(repro.load(csv, kind).items())


rows = load("fefet")
if not rows:
    sys.exit("no fefet runs in " + csv)
temps = sorted({float(k.split("@")[1]) for _, m in rows for k in m if k.startswith("fefet.acc@")})
pct = lambda x: "%.2f" % (100 * x)


def plain_refs(rs):
    """Clean accuracy of each family's plain network (fc-plain, vgg3-plain), by family."""
    return {name.split("-")[0]: m["fefet.clean"] for name, m in rs if name.endswith("-plain")}


def cells(m, key):
    """The accuracy cells of one row over the temperatures, key 'fefet.acc@' or 'fefet.bera_acc@'."""
    return [pct(m.get("%s%g" % (key, t), float("nan"))) for t in temps]


ref = plain_refs(rows)
print("Accuracy (%) over temperature (deg C), test set; 'BERA' rows use the BERA assignment;\n"
      "ref = the plain network's clean test accuracy; 'min - ref' in points (target: >= -1).\n")
print("| model | storage | clean | " + " | ".join("%g" % t for t in temps) + " | min | min - ref |")
print("|---|---|---|" + "---|" * len(temps) + "---|---|")
for name, m in rows:
    r = ref.get(name.split("-")[0], float("nan"))
    for label, key, mn in (("direct", "fefet.acc@", "fefet.acc_min"), ("BERA", "fefet.bera_acc@", "fefet.bera_acc_min")):
        if mn not in m:
            continue
        print("| %s | %s | %s | %s | %s | %+.2f |" % (name, label, pct(m["fefet.clean"]), " | ".join(cells(m, key)), pct(m[mn]),
                                                   100 * (m[mn] - r)))
print("\nBERA search (validation data, at the plain assignment's worst temperature there):\n")
print("| model | search T | assignment (bit l = layer l inverted) | val acc identity | val acc BERA | evaluated |")
print("|---|---|---|---|---|---|")
for name, m in rows:
    if "fefet.bera_mask" in m:
        mask = int(m["fefet.bera_mask"])
        print("| %s | %g | %d (0b%s) | %s | %s | %d |" % (name, m["fefet.bera_search_t"], mask, bin(mask)[2:],
                                                      pct(m["fefet.bera_search_identity"]),
                                                      pct(m["fefet.bera_search_best"]), m["fefet.bera_evaluated"]))
print("\nEvaluator time (wall s / cpu s): " + "; ".join(
    "%s %.1f/%.1f" % (n, m.get("seconds", float("nan")), m.get("cpu_seconds", float("nan"))) for n, m in rows))

vrows = load("val")
if vrows:
    vref = plain_refs(vrows)
    print("\nValidation sweeps (5,000 validation images of seed 1, no BERA; the recipe is chosen by 'min'),\n"
          "ref = the plain network's clean validation accuracy:\n")
    print("| model | clean | " + " | ".join("%g" % t for t in temps) + " | min | T worst | min - ref |")
    print("|---|---|" + "---|" * len(temps) + "---|---|---|")
    for name, m in vrows:
        r = vref.get(name.split("-")[0], float("nan"))
        print("| %s | %s | %s | %s | %g | %+.2f |" % (name, pct(m["fefet.clean"]), " | ".join(cells(m, "fefet.acc@")),
                                                   pct(m["fefet.acc_min"]), m["fefet.t_worst"],
                                                   100 * (m["fefet.acc_min"] - r)))
