"""
Turning what the clients measured into the figures of a row: latencies,
percentiles, milliseconds, and what following clients were delivered.
"""

from array import array


def percentile(ordered: list[float] | array, fraction: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def sorted_latencies(answers: list[dict]) -> list[float]:
    """Merge the latencies (seconds, packed doubles) the client workers answered; sort them."""
    latencies = array("d")
    for answer in answers:
        latencies.frombytes(answer["latencies"])
    return sorted(latencies)


def tally_totals(answers: list[dict]) -> dict:
    """Sum the tallies the client workers answered to collect_tallies; the last delivery is the latest."""
    totals = {
        key: sum(answer[key] for answer in answers)
        for key in answers[0]
        if key not in ("last_at", "latencies")
    }
    totals["last_at"] = max(answer["last_at"] for answer in answers)
    return totals


def delivery(totals: dict, events: int) -> dict:
    """Return what the clients of ``totals`` got of ``events`` events each: all, twice, unordered, reset."""
    expected = totals["clients"] * events
    return {
        "delivered": totals["delivered"],
        "delivery_ratio": totals["delivered"] / expected if expected else None,
        "duplicates": totals["duplicates"],
        "order_violations": totals["order_violations"],
        "resets": totals["resets"],
    }
