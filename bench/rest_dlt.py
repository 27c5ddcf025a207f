"""dlt's rest_api source on the same server and config as bench/rest_pipeline.toml.
usage: python rest_dlt.py DB WORKDIR"""
import os
import sys

import dlt
from dlt.sources.rest_api import rest_api_source

db, work = sys.argv[1], sys.argv[2]
os.environ["DLT_DATA_DIR"] = work
os.environ["NORMALIZE__LOADER_FILE_FORMAT"] = "parquet"
source = rest_api_source({
    "client": {"base_url": "http://127.0.0.1:8077",
               "paginator": {"type": "json_link", "next_url_path": "next"}},
    "resource_defaults": {"endpoint": {"data_selector": "data"}},
    "resources": ["r0", "r1", "r2", "r3"],
}, parallelized=True)
pipeline = dlt.pipeline("rest_bench_dlt", destination=dlt.destinations.duckdb(db),
                        dataset_name="rest_data", pipelines_dir=work)
print(pipeline.run(source, loader_file_format="parquet"))
