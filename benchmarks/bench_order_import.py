"""CSV order import: rows/s and peak memory of grouping a Shopify-shaped export, as the file grows.

A script, not a test: `.venv/bin/python benchmarks/bench_order_import.py [--orders 100000 400000]
[--rounds 3]`.
For each size it writes a Shopify-shaped export (the preset's columns, 1-4 line items per order, order-level
cells on the first row only, 10% of orders interleaved with the previous one), then reads it with
`--preset shopify` in a fresh child process (`CsvOrders.keyed()`: parse, group, build and validate the
events; no Redis) and prints the median rows/s and the child's peak RSS. Memory should grow by the closed
orders' fingerprints only (~tens of bytes per order), not with the rows: the window bounds the rest.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

HEADER = [
    "Name", "Email", "Financial Status", "Currency", "Total", "Discount Code", "Created at",
    "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku", "Refunded Amount", "Source",
]  # fmt: skip


def write_export(path: Path, orders: int, seed: int = 7) -> int:
    """A Shopify-shaped export of `orders` orders; returns the row count."""
    rng = random.Random(seed)
    rows: list[list[str]] = []
    for n in range(orders):
        lines = rng.randint(1, 4)
        created = f"2026-{1 + n * 12 // orders:02d}-{1 + n % 28:02d} 10:{n % 60:02d}:00 +0100"
        prices = [rng.choice(["9.90", "19.00", "45.00", "120.00"]) for _ in range(lines)]
        order: list[list[str]] = []
        for i, price in enumerate(prices):
            first = i == 0
            order.append(
                [
                    f"#{1000 + n}", f"buyer{rng.randrange(orders // 3 + 1)}@example.com" if first else "",
                    "paid" if first else "", "EUR" if first else "", "100.00" if first else "",
                    rng.choice(["", "", "SPRING10"]) if first else "", created if first else "",
                    str(rng.randint(1, 3)), f"Item {i}", price, f"SKU-{rng.randrange(500)}",
                    "0.00" if first else "", "web" if first else "",
                ]
            )  # fmt: skip
        if rows and rng.random() < 0.1:  # interleaved: its first row before the previous order's last row
            rows[-1:] = [order[0], rows[-1], *order[1:]]
        else:
            rows += order
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return len(rows)


def peak_rss_kib() -> int:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries the parent's peak over fork + exec,
    and the parent built the whole export in memory."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(path: str) -> None:
    """Read the export once with the Shopify preset; print rows, events, seconds, peak RSS (KiB)."""
    import argparse as ap

    from streams.replay.csv_orders import CsvOrders, read_header
    from streams.replay.presets import csv_options

    args = ap.Namespace(
        preset="shopify", columns=None, time_format=None, timezone="UTC", default_channel="web",
        currency=None, delimiter=",", decimal_comma=False, order_window=10_000, hash_customer_id=None,
        encoding="utf-8-sig",
    )  # fmt: skip
    source = Path(path)
    orders = CsvOrders(source, csv_options(args, read_header(source)), source.with_suffix(".rejects.csv"))
    start = time.perf_counter()
    events = sum(1 for _ in orders.keyed())
    seconds = time.perf_counter() - start
    peak = peak_rss_kib()
    print(orders.rows, events, orders.rejected, f"{seconds:.3f}", peak)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print("orders     rows      events   rejected  rows/s (median)  peak RSS MiB")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.orders:
            path = Path(tmp) / f"orders_export_{n}.csv"
            write_export(path, n)
            runs = []
            for _ in range(args.rounds):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                runs.append(out)
            rows, events, rejected = (int(x) for x in runs[0][:3])
            rate = statistics.median(rows / float(r[3]) for r in runs)
            peak = statistics.median(int(r[4]) for r in runs) / 1024
            print(f"{n:<10,} {rows:<9,} {events:<8,} {rejected:<9,} {rate:<16,.0f} {peak:.0f}")


if __name__ == "__main__":
    main()
