"""
Tables of the database history (history/database.py). Nothing else in the
app stores anything; these stay empty unless HISTORY_BACKEND names
``notifications.history.database.DatabaseHistory``.
"""

from django.db import models


class HistoryState(models.Model):
    """
    The one row (pk 1) that names this lifetime of the history and counts
    events. Every append updates it first, so appends take turns on its lock.
    """

    id = models.SmallIntegerField(primary_key=True, default=1)
    epoch = models.CharField(max_length=32)
    seq = models.BigIntegerField(default=0)

    class Meta:
        db_table = "notifications_history_state"


class HistoryTopic(models.Model):
    """Per topic: how many events are kept, and the highest seq trimmed away."""

    topic = models.CharField(max_length=64, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    evicted = models.BigIntegerField(default=0)

    class Meta:
        db_table = "notifications_history_topic"


class HistoryEvent(models.Model):
    """One kept event; its seq is its position in the log of every topic."""

    seq = models.BigIntegerField(primary_key=True)
    topic = models.CharField(max_length=64)
    type = models.CharField(max_length=64)
    data = models.TextField()

    class Meta:
        db_table = "notifications_history_event"
        indexes = [models.Index(fields=["topic", "seq"], name="notifications_topic_seq")]
