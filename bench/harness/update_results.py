#!/usr/bin/env python3
"""Regenerate results/summary.md and paste it into RESULTS.md between the SUMMARY markers."""
import os
import subprocess
import sys

B = os.path.dirname(os.path.abspath(__file__))
BENCH_HOME = os.environ.get("BENCH_HOME", os.path.expanduser("~/.cache/sluice-bench"))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(BENCH_HOME, "results")
subprocess.run([sys.executable, os.path.join(B, "summarize.py"), out], check=True, stdout=subprocess.DEVNULL)
md = open(os.path.join(out, "summary.md")).read()
p = os.path.join(B, "RESULTS.md")
s = open(p).read()
a, b = "<!-- BEGIN SUMMARY -->", "<!-- END SUMMARY -->"
s = s[: s.index(a) + len(a)] + "\n" + md + s[s.index(b):]
open(p, "w").write(s)
print("RESULTS.md updated")
