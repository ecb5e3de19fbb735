#!/usr/bin/python3
"""Raw CSV and tables of the search benchmark (experiments/search_bench/run.sh).

usage: summarize.py collect OUT BUDGET > results/MODE.csv
       summarize.py tables results/MODE.csv

collect reads run.sh's output folder: every bnas study (STRATEGY_SEED.db, read with
sqlite3: trials in the order they finished, t_end) and every Optuna peer run
(optuna-SAMPLER_SEED.csv, rows in the order they ran), and the hand-made networks
(hand.txt, `bnas score` output); it writes one row per trial:
strategy,seed,order,number,state,seconds,fault_acc,model_bytes,val_acc,test_acc,budget,config
It also recomputes each bnas study's final hypervolume from the trials and checks it
against the one bnas stored (the same hypervolume for bnas and for the peer).

tables prints, per strategy, the hypervolume of the trials finished within a quarter, half
and all of the budget of trial seconds (mean and sd over seeds), the trials trained, and
whether the found fronts hold a network smaller and more accurate under errors than each
hand-made one. The objectives and reference point are bench.yaml's.
"""
import csv
import glob
import math
import os
import re
import sqlite3
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
FIELDS = ["strategy", "seed", "order", "number", "state", "seconds", "fault_acc", "model_bytes",
          "val_acc", "test_acc", "budget", "config"]
ORDER = ["nsga2", "evolution", "random", "optuna-nsga2", "optuna-tpe"]


def reference():
    """(ref fault.acc, ref model_bytes) of bench.yaml's objectives (max, min)."""
    spec = yaml.safe_load(open(os.path.join(HERE, "bench.yaml")))
    ref = {o["metric"]: o["ref"] for o in spec["objectives"]}
    return ref["fault.acc"], ref["model_bytes"]


def hypervolume(points, ref):
    """Area dominated by (fault_acc max, bytes min) points within the reference box."""
    ra, rb = ref
    pts = sorted((b, a) for a, b in points if a > ra and b < rb)
    hv, best = 0.0, ra  # sweep bytes ascending: the best accuracy so far spans to the next bytes value
    for i, (b, a) in enumerate(pts):
        best = max(best, a)
        nxt = pts[i + 1][0] if i + 1 < len(pts) else rb
        hv += (best - ra) * (nxt - b)
    return hv


def db_rows(path, strategy, seed, budget):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    metrics = {}
    for t, name, v in db.execute("SELECT trial, name, value FROM metrics"):
        metrics.setdefault(t, {})[name] = v
    rows = []
    q = ("SELECT number, state, COALESCE(seconds, 0), config FROM trials "
         "ORDER BY t_end IS NULL, t_end, number")
    for order, (number, state, sec, config) in enumerate(db.execute(q)):
        m = metrics.get(number, {})
        rows.append([strategy, seed, order, number, state, "%.3f" % sec, m.get("fault.acc", ""),
                     m.get("model_bytes", ""), m.get("val_acc", ""), m.get("test_acc", ""), budget, config])
    stored = db.execute("SELECT hv FROM hypervolume ORDER BY trial DESC LIMIT 1").fetchone()
    db.close()
    pts = [(float(r[6]), float(r[7])) for r in rows if r[4] == "COMPLETE"]
    mine = hypervolume(pts, reference())
    if stored and not math.isclose(mine, stored[0], rel_tol=1e-9, abs_tol=1e-6):
        sys.exit("summarize.py: %s: hypervolume %.9g recomputed, %.9g stored" % (path, mine, stored[0]))
    return rows


def csv_rows(path, strategy, seed, budget):
    rows = []
    for order, r in enumerate(csv.DictReader(open(path))):
        rows.append([strategy, seed, order, r["number"], r["state"], r["seconds"], r["fault.acc"],
                     r["model_bytes"], r["val_acc"], r["test_acc"], budget, r["config"]])
    return rows


def hand_rows(path):
    rows, cur = [], None
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("== score "):
            cur = {"name": "hand-" + "-".join(line[9:].split())}
            rows.append(cur)
        elif cur is not None and " " in line:
            k, v = line.split(" ", 1)
            cur[k] = v
    return [[r["name"], 0, 0, 0, "COMPLETE", r.get("seconds", ""), r.get("fault.acc", ""),
             r.get("model_bytes", ""), r.get("val_acc", ""), r.get("test_acc", ""), 0, r.get("config", "")]
            for r in rows]


def collect(out, budget):
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(FIELDS)
    for path in sorted(glob.glob(os.path.join(out, "*.db"))):
        st, seed = re.match(r"(.+)_(\d+)\.db$", os.path.basename(path)).groups()
        w.writerows(db_rows(path, st, int(seed), budget))
    for path in sorted(glob.glob(os.path.join(out, "optuna-*_*.csv"))):
        st, seed = re.match(r"(.+)_(\d+)\.csv$", os.path.basename(path)).groups()
        w.writerows(csv_rows(path, st, int(seed), budget))
    hand = os.path.join(out, "hand.txt")
    if os.path.exists(hand):
        w.writerows(hand_rows(hand))


def mean_sd(xs):
    if not xs:
        return float("nan"), float("nan")
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def within(rows, limit):
    """COMPLETE (fault_acc, bytes) of rows whose cumulative trial seconds stay within limit."""
    spent, pts = 0.0, []
    for r in sorted(rows, key=lambda r: int(r["order"])):
        sec = float(r["seconds"] or 0)
        if spent + sec > limit:
            break
        spent += sec
        if r["state"] == "COMPLETE":
            pts.append((float(r["fault_acc"]), float(r["model_bytes"])))
    return pts


def tables(path):
    rows = list(csv.DictReader(open(path)))
    ref = reference()
    runs = {}
    for r in rows:
        if not r["strategy"].startswith("hand-"):
            runs.setdefault(r["strategy"], {}).setdefault(int(r["seed"]), []).append(r)
    hand = [r for r in rows if r["strategy"].startswith("hand-")]
    budget = float(next(r["budget"] for r in rows if not r["strategy"].startswith("hand-")))
    sts = sorted(runs, key=lambda s: (ORDER.index(s) if s in ORDER else len(ORDER), s))
    seeds = sorted({s for st in runs.values() for s in st})
    print("Hypervolume (fault.acc at BER 5%% x model bytes, reference (%g, %g)) of the trials finished "
          "within a share of the budget of %.0f trial seconds per study; mean +- sd over seeds %s.\n"
          % (ref[0], ref[1], budget, " ".join(map(str, seeds))))
    print("| strategy | trials trained | hv at 1/4 | hv at 1/2 | hv at budget | best fault.acc |")
    print("|---|---|---|---|---|---|")
    final = {}
    for st in sts:
        per = runs[st]
        cells = []
        for frac in (0.25, 0.5, 1.0):
            m, sd = mean_sd([hypervolume(within(per[s], frac * budget), ref) for s in per])
            cells.append("%.0f +- %.0f" % (m, sd))
            if frac == 1.0:
                final[st] = (m, sd, len(per))
        n, _ = mean_sd([len(within(per[s], budget)) for s in per])
        best, bsd = mean_sd([max([a for a, b in within(per[s], budget)] or [0]) for s in per])
        print("| %s | %.1f | %s | %.4f +- %.4f |" % (st, n, " | ".join(cells), best, bsd))
    bn = [s for s in final if not s.startswith("optuna")]
    op = [s for s in final if s.startswith("optuna")]
    if bn and op:
        b = max(bn, key=lambda s: final[s][0])
        o = max(op, key=lambda s: final[s][0])
        gap = final[b][0] - final[o][0]
        sd = max(final[b][1], final[o][1])
        print("\nBest bnas strategy %s vs best Optuna sampler %s at the budget: %+.0f (%.1f x the larger "
              "seed sd %.0f; target > 2)." % (b, o, gap, gap / sd if sd > 0 else float("inf"), sd))
    if hand:
        print("\nHand-made networks (the benchmark's recipe, `bnas score`) and the found networks that beat "
              "them: smaller and more accurate under 5% bit errors, within the budget (seeds with one / seeds).\n")
        print("| network | topology | loss | fault.acc | model bytes | val_acc | " + " | ".join(sts) + " |")
        print("|---|---|---|---|---|---|" + "---|" * len(sts))
        for h in hand:
            ha, hb = float(h["fault_acc"]), float(h["model_bytes"])
            cells = []
            for st in sts:
                wins = sum(any(a > ha and b < hb for a, b in within(runs[st][s], budget)) for s in runs[st])
                cells.append("%d / %d" % (wins, len(runs[st])))
            cfg = h["config"].split("|")  # TOPOLOGY|LOSS|b=B|...
            loss = cfg[1] + (" b=" + cfg[2][2:] if cfg[1] == "mhl" else "")
            print("| %s | %s | %s | %.4f | %.0f | %.4f | %s |" % (h["strategy"][5:], cfg[0], loss, ha, hb,
                                                                 float(h["val_acc"]), " | ".join(cells)))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "collect":
        collect(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "tables":
        tables(sys.argv[2])
    else:
        sys.exit(__doc__)
