#!/usr/bin/env python3
"""Summarize OUT/raw.jsonl -> OUT/summary.md (and print it).
Per case id, the latest entry of each run number is used. Reported:
  median wall s (min-max), rows/s = rows/median wall, MB/s = source bytes/median wall (MB = 1e6 B;
  source bytes = file size, or pg_relation_size() of the PostgreSQL heap), peak RSS MiB = median over runs
  of GNU time's max RSS (largest single process), tree RSS MiB = median over runs of the sampled
  sum over the process tree, x floor = median wall / median wall of the duckdb case of the same task."""
import json
import os
import statistics
import subprocess
import sys

BENCH_HOME = os.environ.get("BENCH_HOME", os.path.expanduser("~/.cache/sluice-bench"))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(BENCH_HOME, "results")
DATA = os.environ.get("BENCH_DATA", os.path.join(BENCH_HOME, "data"))

latest = {}
order = []
with open(os.path.join(OUT, "raw.jsonl")) as f:
    for line in f:
        d = json.loads(line)
        if d["id"] not in order:
            order.append(d["id"])
        latest[(d["id"], d["run"])] = d


def src_bytes(src, cache={}):
    if src in cache:
        return cache[src]
    if src.startswith("pg:"):
        try:
            out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "bench", "-d", "bench", "-Atc",
                                  f"select pg_relation_size('{src[3:]}')"], capture_output=True, text=True,
                                 env={**os.environ, "PGPASSWORD": "bench"}).stdout.strip()
            v = int(out)
        except Exception:
            v = None
    else:
        p = os.path.join(DATA, src)
        v = os.path.getsize(p) if os.path.exists(p) else None
    cache[src] = v
    return v


rows_out = []
floor = {}
for cid in order:
    runs = [d for (i, r), d in sorted(latest.items()) if i == cid]
    good = [d for d in runs if d["ok"]]
    use = good or runs
    wall = statistics.median(d["wall_s"] for d in use)
    rss = statistics.median(d["max_rss_kb"] for d in use) / 1024
    trss = statistics.median(d["tree_peak_rss_kb"] for d in use) / 1024
    d0 = use[-1]
    nb = src_bytes(d0["src"])
    tables = d0["tables"]
    short = [t["table"].split(".")[-1] for t in tables]
    names = [t["table"] if short.count(t["table"].split(".")[-1]) > 1 else t["table"].split(".")[-1] for t in tables]
    if len(tables) > 2:
        tdesc = (f'{names[0]} {tables[0]["rows"]:,}r/{tables[0]["cols"]}c + {len(tables) - 1} child tables '
                 f'({sum(t["rows"] for t in tables[1:]):,} rows)')
    else:
        tdesc = "; ".join(f'{n} {t["rows"]:,}r/{t["cols"]}c' for n, t in zip(names, tables))
    rec = dict(id=cid, tool=d0["tool"], task=d0["task"], n_ok=len(good), n=len(runs), wall=wall,
               wmin=min(d["wall_s"] for d in use), wmax=max(d["wall_s"] for d in use),
               rps=d0["rows"] / wall if wall else 0, mbps=(nb / 1e6 / wall) if nb and wall else None,
               rss=rss, trss=trss, tables=tdesc, total_rows=sum(t["rows"] for t in tables))
    rows_out.append(rec)
    if d0["tool"] == "duckdb" and good:
        floor[d0["task"]] = wall

task_order = []
for r in rows_out:
    if r["task"] not in task_order:
        task_order.append(r["task"])
lines = ["| task | case | tool | ok/runs | median wall s (min–max) | rows/s | MB/s | peak RSS MiB | tree RSS MiB | × floor | tables loaded (rows/cols) |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
for t in task_order:
    for r in sorted((r for r in rows_out if r["task"] == t), key=lambda r: r["wall"]):
        fl = floor.get(t)
        lines.append(
            f'| {t} | {r["id"]} | {r["tool"]} | {r["n_ok"]}/{r["n"]} | {r["wall"]:.2f} ({r["wmin"]:.2f}–{r["wmax"]:.2f}) '
            f'| {r["rps"]:,.0f} | {"%.1f" % r["mbps"] if r["mbps"] else "-"} | {r["rss"]:,.0f} | {r["trss"]:,.0f} '
            f'| {"%.1f" % (r["wall"] / fl) if fl else "-"} | {r["tables"]} |')
# dlt-style stage split, parsed from a "STAGES extract=..s normalize=..s load=..s" line on stderr
import re
stage_lines = []
for r in rows_out:
    runs = [d for (i, _), d in sorted(latest.items()) if i == r["id"]]
    st = []
    for d in runs:
        try:
            m = re.search(r"STAGES extract=([\d.]+)s normalize=([\d.]+)s load=([\d.]+)s",
                          open(os.path.join(d["dir"], "stderr.log")).read())
        except OSError:
            m = None
        if m:
            st.append(tuple(float(x) for x in m.groups()))
    if st:
        med = [statistics.median(x[k] for x in st) for k in range(3)]
        stage_lines.append(f'| {r["id"]} | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} | {r["wall"] - sum(med):.1f} |')
if stage_lines:
    lines += ["", "### dlt stage split (median s; rest = interpreter start, imports, pipeline setup)", "",
              "| case | extract | normalize | load | rest |", "|---|---|---|---|---|"] + stage_lines
lines += ["", "### What each case produced (last run; dlt's _dlt_* tables excluded)", "",
          "| case | table | rows | cols | column types |", "|---|---|---|---|---|"]
for r in rows_out:
    runs = [d for (i, _), d in sorted(latest.items()) if i == r["id"]]
    for t in runs[-1]["tables"]:
        ty = ", ".join(f"{k}×{v}" for k, v in sorted(t.get("types", {}).items(), key=lambda kv: -kv[1]))
        lines.append(f'| {r["id"]} | {t["table"]} | {t["rows"]:,} | {t["cols"]} | {ty} |')
md = "\n".join(lines) + "\n"
with open(os.path.join(OUT, "summary.md"), "w") as f:
    f.write(md)
with open(os.path.join(OUT, "summary.json"), "w") as f:
    json.dump(rows_out, f, indent=1)
print(md)
