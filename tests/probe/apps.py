"""
A test-only app loaded into server subprocesses to observe what a stop does:
it records each request_finished and, at exit, the channel-layer groups that
still have members, in the file named by PROBE_LOG.
"""

import atexit
import json
import os

from django.apps import AppConfig
from django.core.signals import request_finished


def _record(line: dict) -> None:
    with open(os.environ["PROBE_LOG"], "a") as log:
        log.write(json.dumps(line) + "\n")


def record_request_finished(sender, **kwargs):
    _record({"request_finished": 1})


def record_groups_at_exit():
    from channels.layers import channel_layers

    layer = channel_layers.backends.get("default")
    groups = {name: len(members) for name, members in getattr(layer, "groups", {}).items() if members}
    _record({"groups_at_exit": groups})


class ProbeConfig(AppConfig):
    name = "tests.probe"
    label = "probe"

    def ready(self):
        if os.environ.get("PROBE_LOG"):
            request_finished.connect(record_request_finished, dispatch_uid="probe")
            atexit.register(record_groups_at_exit)
