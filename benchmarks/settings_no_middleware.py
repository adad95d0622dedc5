"""
The demo project without middleware, to measure what Django's sync
middleware hooks cost each request (each is a thread hop); see README.md,
"Benchmarks".
"""

from project.settings import *  # noqa: F403

MIDDLEWARE = []
