"""
The demo project with Twisted's own buffered writes for event streams, to
measure what eager writes save (NOTIFICATIONS['EAGER_WRITES']); see
README.md, "Benchmarks".
"""

from project.settings import *  # noqa: F403
from project.settings import NOTIFICATIONS

NOTIFICATIONS = {**NOTIFICATIONS, "EAGER_WRITES": False}
