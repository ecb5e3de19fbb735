#!/usr/bin/python3
"""The Optuna peer of the search benchmark: Optuna's NSGA-II or TPE sampler searching
the spec's own search space, every trial trained and scored by `bnas score` (the
study's trial function: same data split, recipe, evaluators and seeds as `bnas run`).

usage: optuna_peer.py SPEC --sampler nsga2|tpe --budget SECONDS --out CSV [--bnas BIN]

The space is read from the spec's `search_space` mapping: an int dimension becomes
suggest_int, a choice suggest_categorical, a float/log dimension suggest_float, a
plain value stays fixed (not passed). Per-item knobs get one parameter per active
block or layer (conv_channels_0, ...); mhl_b is suggested only under loss mhl and
the Bop knobs only under optimizer bop, as bnas leaves them inactive. The spec's
hard constraints (max_model_bytes, max_macs) are Optuna constraints: a proposal
beyond them is decoded (`bnas score --no-train`), never trained, costs nothing and
is told to Optuna as infeasible (constraint value > 0) with the worst objective
values. Trial k trains with the seed of bnas trial k of the study, and the sampler
is seeded with the spec's seed. Optuna proposes a configuration again when it
wants: a repeat is trained again and costs its time (what a user gets from Optuna).

The search stops once the trained trials' seconds (the `seconds` bnas score prints:
training and evaluators, data loading excluded, as bnas's trials.seconds) reach
SECONDS. Every trial is one CSV row:
number,state,seconds,cpu_seconds,<objective metrics>,val_acc,test_acc,model_bytes,config
"""
import argparse
import csv
import subprocess
import sys
import time

import optuna
import yaml

PER_ITEM = {"conv_channels": "conv_blocks", "conv_pool": "conv_blocks", "fc_width": "fc_layers"}
DEFAULT_COUNT = {"conv_blocks": 0, "fc_layers": 1}
BOP_ONLY = ("bop_gamma", "bop_tau", "momentum_format")


def dimension(value):
    """(kind, payload) of a search-space entry: fixed, int, choice, float or log."""
    if isinstance(value, list):
        return "choice", value
    if isinstance(value, dict):
        t = value.get("type")
        if t == "choice":
            return "choice", value["values"]
        if t == "int":
            return "int", (value["low"], value["high"])
        if t in ("float", "uniform"):
            return "float", (value["low"], value["high"])
        if t in ("log", "loguniform"):
            return "log", (value["low"], value["high"])
        sys.exit(f"optuna_peer.py: unknown dimension type {t!r}")
    return "fixed", value


def load_space(spec):
    space = spec["search_space"]
    if isinstance(space, str):
        sys.exit("optuna_peer.py: give the search space inline in the spec")
    return {k: dimension(v) for k, v in space.items()}


def suggest(trial, name, dim):
    kind, p = dim
    if kind == "int":
        return trial.suggest_int(name, p[0], p[1])
    if kind == "choice":
        return trial.suggest_categorical(name, p)
    if kind == "float":
        return trial.suggest_float(name, p[0], p[1])
    if kind == "log":
        return trial.suggest_float(name, p[0], p[1], log=True)
    return p


def text(v):
    if isinstance(v, list):
        return "[" + ",".join(text(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def configuration(trial, space):
    """KEY=VALUE arguments of bnas score for the trial's suggestions (define-by-run)."""
    values = {}
    for key in ("conv_blocks", "fc_layers"):  # the counts first: they decide the per-item parameters
        if key in space:
            values[key] = suggest(trial, key, space[key])
    for key, dim in space.items():
        if key in values:
            continue
        if key in PER_ITEM:
            count = values.get(PER_ITEM[key], DEFAULT_COUNT[PER_ITEM[key]])
            if dim[0] == "fixed":
                continue
            if count > 0:
                values[key] = [suggest(trial, f"{key}_{i}", dim) for i in range(count)]
            continue
        if key == "mhl_b" and values.get("loss", space.get("loss", ("fixed", "ce"))[1]) != "mhl":
            continue
        if key in BOP_ONLY and values.get("optimizer", "adam") != "bop":
            continue
        if dim[0] != "fixed":
            values[key] = suggest(trial, key, dim)
    return [f"{k}={text(v)}" for k, v in values.items()]


def score(bnas, spec_path, args, number, dry):
    cmd = [bnas, "score", spec_path, *args, "--trial", str(number)] + (["--no-train"] if dry else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition(" ")
        out[k] = v
    if p.returncode != 0 and not dry:
        out["error"] = p.stderr.strip().replace("\n", " ")
    elif p.returncode != 0:
        sys.exit(f"optuna_peer.py: {' '.join(cmd)}: {p.stderr.strip()}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--sampler", choices=["nsga2", "tpe"], required=True)
    ap.add_argument("--budget", type=float, required=True, help="trial seconds to spend")
    ap.add_argument("--out", required=True)
    ap.add_argument("--bnas", default="build/bnas")
    ap.add_argument("--population", type=int, default=16)
    a = ap.parse_args()
    with open(a.spec) as f:
        spec = yaml.safe_load(f)
    space = load_space(spec)
    objectives = spec["objectives"]
    seed = int(spec.get("seed", 1))
    cons = lambda t: t.user_attrs.get("constraint", [0.0])
    if a.sampler == "nsga2":
        sampler = optuna.samplers.NSGAIISampler(population_size=a.population, seed=seed, constraints_func=cons)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, constraints_func=cons)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=["maximize" if o["direction"] == "max" else "minimize" for o in objectives], sampler=sampler)
    worst = [o.get("ref", 0.0) for o in objectives]
    names = [o["metric"] for o in objectives]
    extra = [m for m in ("val_acc", "test_acc", "model_bytes") if m not in names]
    spent, number, t0 = 0.0, 0, time.process_time()
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", "seconds", "cpu_seconds", *names, *extra, "config"])
        while spent < a.budget:
            trial = study.ask()
            args = configuration(trial, space)
            dec = score(a.bnas, a.spec, args, number, dry=True)
            if dec.get("valid") != "1":
                trial.set_user_attr("constraint", [1.0])
                study.tell(trial, worst)
                w.writerow([number, "INVALID", 0, 0, *[""] * (len(names) + len(extra)), dec.get("config", "")])
            else:
                r = score(a.bnas, a.spec, args, number, dry=False)
                if "error" in r:
                    trial.set_user_attr("constraint", [0.0])
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    spent += float(r.get("seconds", 0))
                    w.writerow([number, "FAIL", r.get("seconds", 0), r.get("cpu_seconds", 0),
                                *[""] * (len(names) + len(extra)), dec["config"]])
                else:
                    vals = [float(r[m]) for m in names]
                    trial.set_user_attr("constraint", [0.0])
                    study.tell(trial, vals)
                    spent += float(r["seconds"])
                    w.writerow([number, "COMPLETE", r["seconds"], r["cpu_seconds"], *[r[m] for m in names],
                                *[r.get(m, "") for m in extra], dec["config"]])
            f.flush()
            number += 1
    print(f"optuna {a.sampler}: {number} trials, {spent:.1f} trial seconds, "
          f"sampler {time.process_time() - t0:.1f} CPU s", file=sys.stderr)


if __name__ == "__main__":
    main()
