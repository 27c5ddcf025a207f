"""Shared helpers for the run_dlt_*.py scripts.

Every script takes:  --db PATH (fresh DuckDB file)  --work DIR (pipelines_dir, kept per run)
Telemetry is switched off (no network here); everything else is dlt defaults unless noted.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_HOME = os.environ.get("BENCH_HOME", os.path.expanduser("~/.cache/sluice-bench"))
DATA = os.environ.get("BENCH_DATA", os.path.join(BENCH_HOME, "data"))
# NOTE: SQLAlchemy 2.1 maps plain postgresql:// to psycopg (v3), which dlt[postgres] does not install
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg2://bench:bench@127.0.0.1:5432/bench")


def parse_args(extra=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--file-format", default=None,
                    help="dlt loader_file_format (default: destination's preferred; duckdb: insert_values "
                         "for python objects, parquet for arrow tables)")
    if extra:
        extra(ap)
    return ap.parse_args()


def make_pipeline(name, a):
    import dlt
    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(a.db),
        dataset_name="bench",
        pipelines_dir=os.path.join(a.work, "pipelines"),
        progress=None,
    )


def run(pipeline, data, file_format=None, **kw):
    """Same as pipeline.run(): extract -> normalize -> load, with per-stage timings on stderr."""
    t0 = time.perf_counter()
    if file_format:
        kw["loader_file_format"] = file_format
    pipeline.extract(data, **kw)
    t1 = time.perf_counter()
    pipeline.normalize()
    t2 = time.perf_counter()
    info = pipeline.load()
    t3 = time.perf_counter()
    info.raise_on_failed_jobs()
    print(f"STAGES extract={t1 - t0:.2f}s normalize={t2 - t1:.2f}s load={t3 - t2:.2f}s",
          file=sys.stderr)
    return info
