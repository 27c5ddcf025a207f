#!/usr/bin/env python3
"""dlt 1.31: the 1M flat JSON lines -> PostgreSQL (dataset `flat_pg`), read as the harness's
run_dlt_flat.py reads them (orjson, lists of 10,000 dicts). --file-format csv uses dlt's COPY
path; the default is dlt's insert_values."""
import argparse
import os
import sys
import time

import orjson

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
import dlt  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--file-format", default=None)
a = ap.parse_args()
DATA = os.environ["BENCH_DATA"]


@dlt.resource(name="flat")
def flat():
    chunk = []
    with open(os.path.join(DATA, "flat.jsonl"), "rb") as f:
        for line in f:
            chunk.append(orjson.loads(line))
            if len(chunk) >= 10_000:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


p = dlt.pipeline(pipeline_name="bench_pg_flat", destination=dlt.destinations.postgres(a.url),
                 dataset_name="flat_pg", pipelines_dir=os.path.join(a.work, "pipelines"), progress=None)
t0 = time.perf_counter()
kw = {"loader_file_format": a.file_format} if a.file_format else {}
p.extract(flat(), **kw)
t1 = time.perf_counter()
p.normalize()
t2 = time.perf_counter()
info = p.load()
t3 = time.perf_counter()
info.raise_on_failed_jobs()
print(f"STAGES extract={t1 - t0:.2f}s normalize={t2 - t1:.2f}s load={t3 - t2:.2f}s", file=sys.stderr)
