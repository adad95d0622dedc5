import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications.exceptions import NotificationsError
from notifications.publishing import publish


class Command(BaseCommand):
    help = (
        "Publish one event and print its id. Streams served by another process receive it when "
        "the history is shared (DatabaseHistory, RedisHistory)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("event_type", help="A type from NOTIFICATIONS['EVENT_TYPES'].")
        parser.add_argument("data", help='The payload as JSON, for example \'{"text": "Hello"}\'.')
        parser.add_argument("--user", metavar="PK", help="Send to this user's private topic only.")

    def handle(self, *args, event_type: str, data: str, user: str | None, **options) -> None:
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise CommandError(f"The data {data!r} is not JSON: {exc}.") from exc
        try:
            event_id = publish(event_type, payload, user=user)
        except NotificationsError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(event_id)
