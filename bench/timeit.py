#!/usr/bin/env python3
"""Interleaved timing of two command sequences, for `make bench`.

usage: timeit.py ROUNDS JSON
JSON: {"subject": [[argv], ...], "reference": [[argv], ...], "setup": [[argv], ...]}
Each round runs the setup (untimed), then the subject and the reference sequences in
alternating order (ABBA), each command exec'd directly (no shell), and must exit 0.
Prints one JSON object: the median seconds of each, their [min, max], and the ratio
subject/reference of the medians.
"""
import json
import statistics
import subprocess
import sys
import time


def run_seq(seq):
    t0 = time.perf_counter()
    for argv in seq:
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            sys.exit(f"timeit: {argv} exited {r.returncode}: {r.stderr.decode(errors='replace')}")
    return time.perf_counter() - t0


def main():
    rounds = int(sys.argv[1])
    spec = json.loads(sys.argv[2])
    times = {"subject": [], "reference": []}
    for i in range(rounds):
        order = ["subject", "reference"] if i % 2 == 0 else ["reference", "subject"]
        for name in order:
            for argv in spec.get("setup", []):
                subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(run_seq(spec[name]))
    subject = statistics.median(times["subject"])
    reference = statistics.median(times["reference"])
    print(json.dumps({
        "rounds": rounds,
        "subject_median_s": subject,
        "reference_median_s": reference,
        "subject_range_s": [min(times["subject"]), max(times["subject"])],
        "reference_range_s": [min(times["reference"]), max(times["reference"])],
        "ratio": subject / reference,
    }))


if __name__ == "__main__":
    main()
