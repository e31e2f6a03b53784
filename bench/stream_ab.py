#!/usr/bin/env python3
"""Side-by-side A/B of two zbuf binaries' `zbuf stream` figures, alternating runs.

Usage: bench/stream_ab.py A_BINARY B_BINARY [--reps 5] [--seconds 1] [--sizes 16K,64K,1M]
                          [--paths iio-to-usb,iio-to-app,usb-to-dac] [--benchmark]
                          [--a-args "..."] [--b-args "..."]
A and B may be the same binary with different flags (--b-args "--batch 1").
For every path and block size it runs A then B (both modes each), `--reps` times, and prints
a Markdown table of medians with [min-max] spread, and B's median over A's. Run it on an idle
machine; the load average at the start and end is printed with the table.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess


def run(binary, path, size, seconds, extra):
    out = subprocess.run([binary, "stream", "--path", path, "--block-size", size, "--seconds",
                          str(seconds), "--json"] + extra, check=True, capture_output=True,
                         text=True)
    doc = json.loads(out.stdout)
    return {r["mode"]: r for r in doc["runs"]}


def fmt(values):
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--sizes", default="16K,64K,1M")
    ap.add_argument("--paths", default="iio-to-usb,iio-to-app,usb-to-dac")
    ap.add_argument("--benchmark", action="store_true", help="benchmark mode (-B) for both")
    ap.add_argument("--a-args", default="", help="extra zbuf stream flags for A")
    ap.add_argument("--b-args", default="", help="extra zbuf stream flags for B")
    args = ap.parse_args()
    common = ["--benchmark"] if args.benchmark else []
    a_extra = common + shlex.split(args.a_args)
    b_extra = common + shlex.split(args.b_args)
    print(f"A: {args.a} {' '.join(a_extra)}")
    print(f"B: {args.b} {' '.join(b_extra)}")
    print(f"load average at start: {os.getloadavg()}")
    rows = []
    for path in args.paths.split(","):
        for size in args.sizes.split(","):
            data = {(w, m, k): [] for w in "ab" for m in ("fileio", "dmabuf")
                    for k in ("mib", "cpu")}
            for _ in range(args.reps):
                for which, binary, extra in (("a", args.a, a_extra), ("b", args.b, b_extra)):
                    runs = run(binary, path, size, args.seconds, extra)
                    for mode in ("fileio", "dmabuf"):
                        data[(which, mode, "mib")].append(runs[mode]["mib_per_s"])
                        data[(which, mode, "cpu")].append(runs[mode]["app_cpu_s_per_gib"] * 1000)
            for mode in ("fileio", "dmabuf"):
                a = data[("a", mode, "mib")]
                b = data[("b", mode, "mib")]
                ca = data[("a", mode, "cpu")]
                cb = data[("b", mode, "cpu")]
                rows.append((path, size, mode, fmt(a), fmt(b),
                             statistics.median(b) / statistics.median(a), fmt(ca), fmt(cb)))
    print(f"load average at end: {os.getloadavg()}")
    print()
    print("| path | block | mode | A MiB/s | B MiB/s | B/A | A app ms/GiB | B app ms/GiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.2f} | {r[6]} | {r[7]} |")


if __name__ == "__main__":
    main()
