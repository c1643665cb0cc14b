#!/usr/bin/env python3
"""Pairs benchmarks named "<work> · ours" and "<work> · <reference>" from a
package-benchmark JMH export and prints medians side by side with the ratio.

Throughput is the median of the per-sample throughput (higher is better);
the unit is part of each benchmark's name."""
import json
import statistics
import sys

rows = {}
for path in sys.argv[1:]:
    for entry in json.load(open(path)):
        name = entry["benchmark"].split(".", 3)[-1].replace("_", " ")
        samples = entry["primaryMetric"].get("rawData") or [[entry["primaryMetric"]["score"]]]
        flat = [v for run in samples for v in run]
        work, _, who = name.rpartition(" · ")
        rows.setdefault(work, {})[who] = statistics.median(flat)

print(f"{'benchmark':<60} {'ours':>14} {'reference':>14} {'ratio':>7}")
for work, sides in sorted(rows.items()):
    ours = sides.get("ours")
    refs = {k: v for k, v in sides.items() if k != "ours"}
    for ref_name, ref in refs.items():
        ratio = ours / ref if ours and ref else float("nan")
        print(f"{work + ' (vs ' + ref_name + ')':<60} {ours:>14.1f} {ref:>14.1f} {ratio:>7.2f}")
    if not refs:
        print(f"{work:<60} {ours:>14.1f} {'-':>14} {'-':>7}")
