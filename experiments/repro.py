#!/usr/bin/env python3
"""Raw results of experiments/reproduce.sh: collect, load, compare, and rewrite tables in place.

  repro.py collect OUT > CSV      every OUT/RUN.KIND.txt of `bnas measure` output ("name value"
                                  lines) or `bnas eval` output (parse_eval), every OUT/RUN.train.txt (final epoch,
                                  test accuracy) and every OUT/RUN.log of `bnas encodings` as CSV
                                  rows run,metric,value (value exactly as printed by bnas)
  repro.py compare OLD NEW        exit 1 if any compared value differs (see TOLERANCE)
  repro.py splice FILE NAME       replace the lines between "<!-- repro:NAME -->" and
                                  "<!-- /repro:NAME -->" in FILE by standard input

TOLERANCE. Every committed CSV is made in the portable determinism mode (the default of bnas train
and bnas measure: fixed-order products and bnas's own elementary functions, README
"Reproducibility"), so on any x86-64 host, thread count and load a rerun prints the same digits:
values are compared EXACTLY, as strings. Timing metrics (TIMING below: wall and CPU seconds,
throughput, time ratios) depend on the machine and its load and are never compared. On another
architecture (outside the portable guarantee) set REPRO_REL_TOL, e.g. REPRO_REL_TOL=1e-6, to
compare numbers within that relative tolerance instead; integer outputs stay exact.

Table scripts import load() from here: {run: {metric: float}} in file order.
"""
import csv
import glob
import math
import os
import re
import sys

TIMING = re.compile(r"(^|[._])(seconds|cpu_seconds|secs|time_ratio|time|img_s|wall)($|[._@])")


def is_timing(metric):
    return bool(TIMING.search(metric))


def parse_train(path):
    """Final epoch's loss / train / val accuracy and the test accuracy of a `bnas train` log."""
    m = {}
    for line in open(path):
        e = re.match(r"epoch\s+(\d+)/(\d+)\s+loss\s+(\S+)\s+train\s+(\S+)%\s+val\s+(\S+)", line)
        if e:
            m["train.epochs"] = e.group(1)
            m["train.loss"], m["train.train_acc"] = e.group(3), e.group(4)
            if e.group(5) != "-":  # "-": trained with --val 0
                m["train.val_acc"] = e.group(5).rstrip("%")
        t = re.match(r"test accuracy\s+(\S+)%", line)
        if t:
            m["train.test_acc"] = t.group(1)
    return m


def parse_metrics(path):
    m = {}
    for line in open(path):
        f = line.split()
        if len(f) == 2 and not line.startswith("#"):
            try:
                float(f[1])
            except ValueError:
                continue
            m[f[0]] = f[1]
    return m


def parse_eval(path):
    """A `bnas eval` report: accuracy, margin.*, and per row of the rate table acc@R, sd@R, min@R,
    max@R and flips@R, R the row's label without spaces (5%, p01=5%,p10=0%), values without '%'."""
    m, table = {}, False
    for line in open(path):
        f = line.split()
        if not f:
            continue
        if f[0] == "accuracy" or f[0].startswith("margin."):
            m[f[0]] = f[1].rstrip("%")
        elif f[0] == "rate" and "acc" in f:
            table = True
        elif table:
            # RATE acc sd lo% .. hi% min max flips, RATE one word ("5%") or four ("p01 5% p10 0%")
            n = len(f) - 8
            if n not in (1, 4) or f[n + 3] != "..":
                continue
            r = f[0] if n == 1 else "%s=%s,%s=%s" % tuple(f[:4])
            for k, v in zip(("acc", "sd", "min", "max", "flips"), (f[n], f[n + 1], f[n + 5], f[n + 6], f[n + 7])):
                m["%s@%s" % (k, r)] = v.rstrip("%")
    return m


def fmt_fields(prefix, f):
    """e4m7b27 -> {prefix.e: 4, prefix.f: 7, prefix.bias: 27} (fp32: e 8, f 23)."""
    g = re.match(r"e(\d+)m(\d+)(?:b(\d+))?$", f)
    if f == "fp32":
        return {prefix + ".e": "8", prefix + ".f": "23"}
    if not g:
        return {}
    m = {prefix + ".e": g.group(1), prefix + ".f": g.group(2)}
    if g.group(3):
        m[prefix + ".bias"] = g.group(3)
    return m


def parse_encodings(path):
    """The lines of a `bnas encodings` log (search, memory model, memory-only runs) as metrics."""
    m = {}
    num = r"([-+0-9.eE]+)"
    for line in open(path):
        g = re.match(r"fp32: val accuracy %s, lost updates %s \(replay .*: %s\), max \|m\| %s" % (num, num, num, num), line)
        if g:
            m.update({"fp32.val_acc": g.group(1), "fp32.lost": g.group(2), "fp32.sim_lost": g.group(3),
                      "fp32.max_m": g.group(4)})
        g = re.match(r"\s*(\d+) bits: (\d+) formats replayed, best (\S+) lost %s" % num, line)
        if g:
            m["screen.%s.formats" % g.group(1)] = g.group(2)
            m["screen.%s.best_lost" % g.group(1)] = g.group(4)
            m.update(fmt_fields("screen.%s.best" % g.group(1), g.group(3)))
        g = re.match(r"\s*train (\S+): val accuracy %s \(fp32 %s\), lost updates %s, .*: (accepted|rejected)" % (num, num, num), line)
        if g:
            m["train.%s.val_acc" % g.group(1)] = g.group(2)
            m["train.%s.lost" % g.group(1)] = g.group(4)
            m["train.%s.accepted" % g.group(1)] = "1" if g.group(5) == "accepted" else "0"
        g = re.match(r"screened (\d+) formats", line)
        if g:
            m["screened"] = g.group(1)
        g = re.match(r"\s*(\S+)\s+weights\s+(\d+)\s+momentum\s+(\d+)\s+bn\s+(\d+)\s+activations\s+(\d+)\s+total\s+(\d+) bytes", line)
        if g:
            for k, v in zip(("weights", "momentum", "bn", "activations", "total"), g.groups()[1:]):
                m["memory.%s.%s" % (g.group(1), k)] = v
        g = re.match(r"\s*reduction %sx \(weights \+ momentum only: %sx\)" % (num, num), line)
        if g:
            m["memory.reduction"], m["memory.reduction_wm"] = g.group(1), g.group(2)
        g = re.match(r"result: (\S+) \((\d+) bits\): val accuracy %s%% vs fp32 %s%%" % (num, num), line)
        if g:
            m["result.found"], m["result.bits"], m["result.val_acc"] = "1", g.group(2), g.group(3)
            m.update(fmt_fields("result", g.group(1)))
        if line.startswith("result: no format"):
            m["result.found"] = "0"
    return m


def collect(out):
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["run", "metric", "value"])
    for path in sorted(glob.glob(os.path.join(out, "*.txt")) + glob.glob(os.path.join(out, "*.log"))):
        run = os.path.basename(path)[:-4]
        if path.endswith(".log"):
            m = parse_encodings(path)
        elif any(line.startswith("error model ") for line in open(path)):
            m = parse_eval(path)
        else:
            m = parse_train(path) if run.endswith(".train") else parse_metrics(path)
        for k, v in m.items():
            w.writerow([run, k, v])


def rows(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        if next(r) != ["run", "metric", "value"]:
            sys.exit("%s:1: expected the header run,metric,value" % path)
        for i, row in enumerate(r, 2):
            if len(row) != 3:
                sys.exit("%s:%d: expected 3 fields, got %d" % (path, i, len(row)))
            yield row


def load(path, kind=None):
    """{run: {metric: float}} of the CSV, in file order; kind 'lim' keeps runs 'NAME.lim' as 'NAME'."""
    res = {}
    for run, metric, value in rows(path):
        if kind:
            if not run.endswith("." + kind):
                continue
            run = run[: -len(kind) - 1]
        res.setdefault(run, {})[metric] = float(value)
    return res


def compare(old, new):
    tol = float(os.environ.get("REPRO_REL_TOL", "0"))
    a = {(r, m): v for r, m, v in rows(old)}
    b = {(r, m): v for r, m, v in rows(new)}
    bad = 0
    compared = skipped = 0
    for key in sorted(set(a) | set(b)):
        if is_timing(key[1]):
            skipped += 1
            continue
        if key not in a or key not in b:
            print("%s %s: only in %s" % (key[0], key[1], old if key in a else new))
            bad += 1
            continue
        compared += 1
        x, y = a[key], b[key]
        same = x == y
        if not same and tol > 0:
            fx, fy = float(x), float(y)
            integer = fx == math.floor(fx) and fy == math.floor(fy)
            same = not integer and abs(fx - fy) <= tol * max(abs(fx), abs(fy))
        if not same:
            print("%s %s: %s committed, %s now" % (key[0], key[1], x, y))
            bad += 1
    how = "exactly" if tol == 0 else "within relative %g (integers exactly)" % tol
    print("compared %d values %s (%d timing values not compared): %s" %
          (compared, how, skipped, "%d differ" % bad if bad else "all equal"))
    return 1 if bad else 0


def splice(path, name):
    text = open(path).read()
    begin, end = "<!-- repro:%s -->\n" % name, "<!-- /repro:%s -->" % name
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        sys.stdin.read()
        print("%s has no '%s' ... '%s' block: tables not written there" % (path, begin.strip(), end))
        return
    new = text[: i + len(begin)] + sys.stdin.read() + text[j:]
    open(path, "w").write(new)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "collect":
        collect(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "splice":
        splice(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
