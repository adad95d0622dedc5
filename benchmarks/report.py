"""
The report printed at the end of a run: a table per scenario, the ratios of
Daphne's figures to the baselines', and the targets with whether each was met.
"""

from .servers import BASELINES

# The figures each scenario's table shows, in order; the JSON lines have them all.
COLUMNS = {
    "capacity": ["streams", "open_seconds", "rss_kib_per_stream", "threads_per_stream", "failures"],
    "fanout": [
        "streams",
        "delivery_ratio",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "server_cpu_us_per_delivery",
        "server_cpu_percent",
        "server_cpu_wait_percent",
        "publish_p50_ms",
        "publish_p99_ms",
        "publish_seconds",
    ],
    "drain": [
        "after",
        "streams",
        "exit_seconds",
        "exit_cpu_seconds",
        "clean",
        "cut",
        "still_open",
        "last_stream_end_seconds",
        "reference_loop_seconds",
        "exit_per_reference_loop",
        "tracebacks",
        "error_lines",
    ],
    "storm": ["clients", "connected", "headers_p50_ms", "all_headers_ms", "all_replayed_ms", "failures"],
    "burst": [
        "streams",
        "events",
        "delivery_ratio",
        "duplicates",
        "order_violations",
        "resets",
        "connections",
        "publish_seconds",
        "last_delivery_seconds",
        "p99_ms",
        "server_cpu_us_per_delivery",
    ],
    "reload": [
        "streams",
        "events",
        "told",
        "farewell_after_change_seconds",
        "publish_back_seconds",
        "stream_back_seconds",
        "caught_up_seconds",
        "delivery_ratio",
        "duplicates",
        "order_violations",
        "resets",
        "tracebacks",
        "error_lines",
    ],
}
# Figures compared as "daphne / baseline" ratios (lower is better for each).
RATIOS = {
    "capacity": ["rss_kib_per_stream"],
    "fanout": ["p50_ms", "p99_ms", "server_cpu_us_per_delivery"],
    "drain": ["exit_seconds", "exit_per_reference_loop"],
    "storm": ["all_headers_ms", "all_replayed_ms"],
    "burst": [],
    "reload": [],
}


def cell(value: object) -> str:
    """Format one figure: None as "-", floats to 3 decimals below 10 and 1 above, dicts as "key: value"."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "0"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_table(title: str, headers: list[str], rows: list[list]) -> None:
    cells = [[cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n## {title}")
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def report(results: list[dict]) -> None:
    """Print a table per scenario, its ratios to the baselines where the scales match, then the targets."""
    for scenario, columns in COLUMNS.items():
        rows = [r for r in results if r["scenario"] == scenario]
        if not rows:
            continue
        print_table(
            scenario, ["server", *columns], [[r["server"], *(r.get(c) for c in columns)] for r in rows]
        )
        ratio_rows = []
        for ours in (r for r in rows if r["server"] == "daphne"):
            for baseline in (r for r in rows if r["server"] in BASELINES):
                if scale_of(baseline) != scale_of(ours):
                    continue
                ratio_rows.append(
                    [f"daphne / {baseline['server']}", scale_of(ours)]
                    + [ratio(ours.get(name), baseline.get(name)) for name in RATIOS[scenario]]
                )
        if ratio_rows:
            print_table(
                f"{scenario}: ratios (below 1: daphne better)", ["", "n", *RATIOS[scenario]], ratio_rows
            )
    print_targets(results)


def scale_of(row: dict) -> str:
    """Return what makes two measurements comparable: their scale (and phase)."""
    return " after ".join(str(row[key]) for key in ("streams", "clients", "after") if key in row)


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or not theirs:
        return None
    return round(ours / theirs, 3)


def find(results: list[dict], scenario: str, server: str, size_key: str, size: int | None = None) -> dict:
    rows = [r for r in results if r["scenario"] == scenario and r["server"] == server]
    if size is not None:
        rows = [r for r in rows if r.get(size_key) == size]
    return rows[-1] if rows else {}


def print_targets(results: list[dict]) -> None:
    fan_sizes = sorted({r["streams"] for r in results if r["scenario"] == "fanout"})
    # The drain targets are for one process (spread has two).
    single_process_drains = {
        r["streams"]: r
        for r in results
        if r["scenario"] == "drain" and r["server"] == "daphne" and r["after"] in ("capacity", "fanout")
    }
    rows = []
    if fan_sizes:
        big, small = fan_sizes[-1], fan_sizes[0]
        ours_big = find(results, "fanout", "daphne", "streams", big)
        ours_small = find(results, "fanout", "daphne", "streams", small)
        theirs_big = find(results, "fanout", "sse-starlette", "streams", big)
        theirs_small = find(results, "fanout", "sse-starlette", "streams", small)
        ratio_delivered = ours_big.get("delivery_ratio")
        rows.append([f"100 % delivery at {big:,} streams", ratio_delivered, ratio_delivered == 1])
        big_ratio = ratio(ours_big.get("p99_ms"), theirs_big.get("p99_ms"))
        rows.append(
            [
                f"p99 at {big:,} <= 0.35 x sse-starlette",
                big_ratio,
                big_ratio is not None and big_ratio <= 0.35,
            ]
        )
        small_ratio = ratio(ours_small.get("p99_ms"), theirs_small.get("p99_ms"))
        rows.append(
            [
                f"p99 at {small:,} <= 0.7 x sse-starlette",
                small_ratio,
                small_ratio is not None and small_ratio <= 0.7,
            ]
        )
        publish_p99 = ours_small.get("publish_p99_ms")
        rows.append(
            [
                f"HTTP publish p99 at {small:,} streams <= 50 ms",
                publish_p99,
                publish_p99 is not None and publish_p99 <= 50,
            ]
        )
    capacity = find(results, "capacity", "daphne", "streams")
    if capacity:
        rows.append(
            [
                "<= 24 KiB RSS per idle stream",
                capacity["rss_kib_per_stream"],
                (capacity["rss_kib_per_stream"] or 99) <= 24,
            ]
        )
        rows.append(
            [
                "no OS thread per stream",
                capacity["threads_per_stream"],
                (capacity["threads_per_stream"] or 0) < 0.01,
            ]
        )
        rows.append([f"{capacity['streams']:,} streams held", capacity["streams"], not capacity["failures"]])
    for size, drained in sorted(single_process_drains.items()):
        clean = drained["clean"] == size and drained["exit_seconds"] is not None
        rows.append(
            [
                f"{size:,} streams drained cleanly, exit <= 2 s",
                f"{drained['clean']:,} clean, last ended {cell(drained['last_stream_end_seconds'])} s, "
                f"exit {cell(drained['exit_seconds'])} s "
                f"(machine's reference loop {cell(drained.get('reference_loop_seconds'))} s)",
                clean and drained["exit_seconds"] <= 2,
            ]
        )
    ours_storm, theirs_storm = (
        find(results, "storm", "daphne", "clients"),
        find(results, "storm", "sse-starlette", "clients"),
    )
    if ours_storm:
        storm_ratio = ratio(ours_storm.get("all_replayed_ms"), theirs_storm.get("all_replayed_ms"))
        rows.append(
            [
                f"storm of {ours_storm['clients']:,} <= 1 x sse-starlette (all replayed)",
                storm_ratio,
                storm_ratio is not None and storm_ratio <= 1 and not ours_storm["failures"],
            ]
        )
    burst = find(results, "burst", "daphne", "streams")
    if burst:
        rows.append(
            [
                f"burst of {burst['events']:,} to {burst['streams']:,}: every event once, in order",
                f"{cell(burst['delivery_ratio'])} delivered, {burst['duplicates']} twice, "
                f"{burst['order_violations']} out of order, {burst['resets']} resets",
                burst["delivery_ratio"] == 1 and not (burst["duplicates"] or burst["order_violations"]),
            ]
        )
    reloaded = find(results, "reload", "daphne", "streams")
    if reloaded:
        # Back: the new child answers a reconnecting stream.
        back = reloaded["stream_back_seconds"]
        rows.append(
            [
                f"runserver reload with {reloaded['streams']:,} streams: back <= 2 s, nothing lost",
                f"streams back {cell(back)} s after the first farewell, publishing "
                f"{cell(reloaded['publish_back_seconds'])} s, "
                f"all caught up {cell(reloaded['caught_up_seconds'])} s; "
                f"{cell(reloaded['delivery_ratio'])} delivered, {reloaded['duplicates']} twice, "
                f"{reloaded['resets']} resets",
                back is not None
                and back <= 2
                and reloaded["delivery_ratio"] == 1
                and not (reloaded["duplicates"] or reloaded["order_violations"] or reloaded["resets"]),
            ]
        )
    if rows:
        print_table("targets", ["target", "measured", "met"], rows)
