#!/usr/bin/env python3
"""Volume accuracy of `facet compare` on the generated grid (issue 11 §3): make bench-accuracy.

Generates the full grid (testdata/generate_meshes.py --accuracy SEEDS: narrow and wide bumps and null pairs at
each, noise σ 0.05-0.3 mm along the normal on both captures, with and without holes in AFTER, a random rigid
motion each), runs `facet compare --json` (release build) on every case, and prints per cell: mean and worst error
against the generated truth, how many cases meet the goal |error| <= max(0.02 mL, 2 %), and how often
volume_change_ci95_ml covers the truth; the "noise floor" is the 95 % spread the captures' noise alone gives the
region's volume (1.96 × the noise part of the interval), which no registration can remove. Exit status 1 when a cell's
mean error (the bias) is beyond the goal by more than twice its standard error, when the coverage is below 95 %, or
when a comparison fails.

Usage: accuracy_benchmark.py --facet BIN [--seeds N] [--out DIR] [--jobs J] [--json FILE]
"""
import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_case(facet, folder, name, case):
    started = time.monotonic()
    out = subprocess.run(
        [facet, "compare", os.path.join(folder, case["before"]), os.path.join(folder, case["after"]),
         "--roi", case["roi"], "--json"], capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    if out.returncode != 0:
        return name, {"error": out.stderr.strip() or f"exit {out.returncode}", "seconds": elapsed}
    result = json.loads(out.stdout)
    return name, {"volume": result["volume_change_ml"], "ci": result.get("volume_change_ci95_ml"),
                  "rms": result["registration_rms_mm"], "noise": result.get("surface_noise_mm"),
                  "noise_sd": (result.get("volume_change_sd_ml") or {}).get("noise"), "seconds": elapsed}


def goal(error, truth):
    return abs(error) <= max(0.02, 0.02 * abs(truth))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--facet", required=True)
    parser.add_argument("--seeds", type=int, default=int(os.environ.get("ACCURACY_SEEDS", "6")))
    parser.add_argument("--out", default="/tmp/facet-accuracy")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()

    manifest_path = os.path.join(args.out, "manifest.json")
    existing = None
    if os.path.exists(manifest_path):
        existing = json.load(open(manifest_path))
    if not existing or existing.get("seeds") != args.seeds:
        print(f"generating the grid ({args.seeds} seeds per cell) in {args.out} ...", flush=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "testdata", "generate_meshes.py"), args.out,
                        "--accuracy", str(args.seeds)], check=True)
        existing = json.load(open(manifest_path))
        existing["seeds"] = args.seeds
        json.dump(existing, open(manifest_path, "w"))
    cases = existing["accuracy"]

    results = {}
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_case, args.facet, args.out, n, c) for n, c in cases.items()]
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            name, result = future.result()
            results[name] = result
            print(f"\r{done}/{len(cases)} cases", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    total_seconds = time.monotonic() - started

    cells = {}
    for name, case in cases.items():
        kind = re.match(r"(.*)-n[0-9.]+-h[0-9]+-s[0-9]+$", name).group(1)
        cell = (kind, case["noise_mm"], case["holes"] > 0)
        cells.setdefault(cell, []).append((case, results[name]))

    print(f"\n`facet compare` volume accuracy: {len(cases)} generated cases, {args.seeds} seeds per cell "
          f"(make bench-accuracy, {time.strftime('%Y-%m-%d')})\n")
    print("| bump | noise σ (mm) | holes | truth (mL) | mean error (bias) ± s.e. | worst error | within goal | "
          "CI95 covers truth | mean CI half-width (mL) | noise floor (mL) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    biased = []
    failures, covered, measured, within = [], 0, 0, 0
    for (kind, noise, holes), entries in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        errors, cover, widths, good, floors = [], 0, [], 0, []
        truth = entries[0][0]["volume_change_ml"]
        for case, result in entries:
            if "error" in result:
                failures.append(result["error"])
                continue
            error = result["volume"] - case["volume_change_ml"]
            errors.append(error)
            good += goal(error, case["volume_change_ml"])
            if result.get("noise_sd") is not None:
                floors.append(1.96 * result["noise_sd"])
            if result["ci"]:
                low, high = result["ci"]
                cover += low <= case["volume_change_ml"] <= high
                widths.append((high - low) / 2)
        measured += len(errors)
        covered += cover
        within += good
        if not errors:
            continue
        worst = max(errors, key=abs)
        mean = sum(errors) / len(errors)
        spread = (sum((e - mean) ** 2 for e in errors) / max(len(errors) - 1, 1)) ** 0.5
        standard_error = spread / len(errors) ** 0.5
        if abs(mean) - 2 * standard_error > max(0.02, 0.02 * abs(truth)):
            biased.append((kind, noise, holes))
        if truth:
            mean_text = f"{100 * mean / truth:+.2f} ± {100 * standard_error / truth:.2f} %"
            worst_text = f"{100 * worst / truth:+.2f} %"
        else:
            mean_text = f"{mean:+.4f} ± {standard_error:.4f} mL"
            worst_text = f"{worst:+.4f} mL"
        floor_text = f"{sum(floors) / len(floors):.4f}" if floors else "—"
        width_text = f"{sum(widths) / len(widths):.4f}" if widths else "—"
        print(f"| {kind} | {noise} | {'yes' if holes else 'no'} | {truth:.3f} | {mean_text} | {worst_text} | "
              f"{good}/{len(errors)} | {cover}/{len(errors)} | {width_text} | {floor_text} |")
    coverage = covered / measured if measured else 0
    print(f"\noverall: {within}/{measured} within max(0.02 mL, 2 %), {len(cells) - len(biased)}/{len(cells)} cells "
          f"whose mean error is within it (allowing two standard errors), CI95 coverage {100 * coverage:.1f} % "
          f"({covered}/{measured}), {len(failures)} failed runs, {total_seconds:.0f} s "
          f"({total_seconds / max(len(cases), 1):.2f} s per compare)")
    for failure in sorted(set(failures)):
        print("failed:", failure)
    if args.json:
        json.dump({"cases": cases, "results": results}, open(args.json, "w"), indent=1)
    return 0 if not failures and not biased and coverage >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
