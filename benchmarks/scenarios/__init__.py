"""
The scenarios of a run, one module each, by the name ``--scenarios`` takes.
Each starts the servers it measures fresh (Bench.serving) and records rows;
drain.py is the last step of capacity, fanout and spread.
"""

from collections.abc import Awaitable, Callable

from ..bench import Bench
from ..servers import Target
from .burst import burst
from .capacity import capacity
from .fanout import fanout
from .reload import reload
from .spread import spread
from .storm import storm

SCENARIOS: dict[str, Callable[[Bench, Target], Awaitable[None]]] = {
    "capacity": capacity,
    "fanout": fanout,
    "storm": storm,
    "burst": burst,
    "spread": spread,
    "reload": reload,
}
