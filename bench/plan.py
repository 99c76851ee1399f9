#!/usr/bin/env python3
"""Benchmark: `berth plan` on the 40 instances of the build-plan benchmark
(../shared/benchmarks/build-plan/oneil, O'Neil's published instances),
each with the default 10 s limit, beside the figures in that README (best
greedy, proven optimum, LP lower bound). Prints a Markdown table and a
summary; the planner is single-threaded.

    bench/plan.py [--time-limit 10] [--instances DIR]

Then the heuristics alone (`--time-limit 0`: the greedy rules and their
restarts, no exact search) on a seeded random family of 200 images × 300
steps (each image 10–60 steps, costs exponential with mean 100).
"""

import argparse
import json
import os
import random
import re
import tempfile
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(REPO), "shared", "benchmarks", "build-plan")


def known_figures(readme):
    """instance -> (best greedy, optimum or None, LP bound) from the README."""
    out = {}
    for line in open(readme):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and re.match(r"\d{3}images-\d{3}cmds", cells[0]):
            optimum = cells[7]
            out[cells[0]] = (float(cells[6]),
                             float(optimum) if re.fullmatch(r"\d+", optimum) else None,
                             float(cells[8]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--time-limit", type=float, default=10)
    ap.add_argument("--instances", default=os.path.join(SHARED, "oneil"))
    ap.add_argument("--berth", default=os.path.join(REPO, "target/release/berth"))
    args = ap.parse_args()
    figures = known_figures(os.path.join(os.path.dirname(args.instances), "README.md"))
    print("| instance | berth | time (s) | proven | berth's bound | best greedy | optimum | LP bound"
          " | vs optimum | vs LP | bound / LP | berth / greedy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    reached = known = within = 0
    for name in sorted(os.listdir(args.instances)):
        if not name.endswith(".json"):
            continue
        inst = name[:-5]
        start = time.perf_counter()
        out = subprocess.run([args.berth, "plan", "--json", "--time-limit", str(args.time_limit),
                              os.path.join(args.instances, name)],
                             capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        v = json.loads(out.stdout)
        greedy, optimum, lp = figures.get(inst, (None, None, None))
        vs_opt = vs_lp = vs_greedy = bound_lp = ""
        if greedy:
            vs_greedy = f"{v['cost'] / greedy:.4f}"
        if optimum:
            known += 1
            reached += v["cost"] <= optimum
            vs_opt = f"{v['cost'] / optimum:.4f}"
        if lp:
            vs_lp = f"{v['cost'] / lp:.4f}"
            bound_lp = f"{v['lower_bound'] / lp:.4f}"
            within += optimum is None and v["cost"] <= lp * 1.01
        fmt = lambda x: "—" if x is None else f"{x:.0f}"
        print(f"| {inst} | {v['cost']:.0f} | {wall:.2f} | {'yes' if v['optimal'] else 'no'} | "
              f"{v['lower_bound']:.0f} | {fmt(greedy)} | {fmt(optimum)} | {fmt(lp)} | {vs_opt} | "
              f"{vs_lp} | {bound_lp} | {vs_greedy} |")
        sys.stdout.flush()
    unknown = sum(1 for f in figures.values() if f[1] is None)
    print(f"\nknown optima reached: {reached}/{known}; "
          f"others within 1% of the LP bound: {within}/{unknown}")
    heuristics_alone(args.berth)


def heuristics_alone(berth, images=200, steps=300, runs=5):
    rng = random.Random(1)
    cmds = {f"c{i:03d}": round(rng.expovariate(1 / 100)) for i in range(steps)}
    names = list(cmds)
    family = {"commands": cmds,
              "images": {f"i{k}": rng.sample(names, rng.randint(10, 60)) for k in range(images)}}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(family, f)
        f.flush()
        walls = []
        for _ in range(runs):
            start = time.perf_counter()
            out = subprocess.run([berth, "plan", "--json", "--time-limit", "0", f.name],
                                 capture_output=True, text=True, check=True)
            walls.append(time.perf_counter() - start)
        v = json.loads(out.stdout)
    walls.sort()
    print(f"heuristics alone, {images} images x {steps} steps: median {walls[len(walls) // 2]:.3f} s "
          f"over {runs} runs (cost {v['cost']:.0f}, no sharing {v['no_sharing']:.0f})")


if __name__ == "__main__":
    sys.exit(main())
