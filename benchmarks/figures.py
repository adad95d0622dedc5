"""Turning what the clients measured into the figures of a row: latencies, percentiles, milliseconds."""

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
