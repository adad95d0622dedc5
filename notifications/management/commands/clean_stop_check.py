import json
import resource
import signal
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications.conf import setting
from notifications.stop_check import StopReport, run_stop_check

SIGNALS = {"TERM": signal.SIGTERM, "INT": signal.SIGINT}


def default_server_command() -> str:
    """Return the stock daphne command line for this project's ASGI_APPLICATION."""
    module, _, attribute = settings.ASGI_APPLICATION.rpartition(".")
    return f"{sys.executable} -m daphne -b 127.0.0.1 -p {{port}} {module}:{attribute}"


class Command(BaseCommand):
    help = (
        "Start a real server on a free loopback port, open streams, publish, stop it with a "
        "signal, and report whether every stream ended cleanly and nothing was lost."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--streams", type=int, default=500, help="Streams to open (default 500).")
        parser.add_argument("--events", type=int, default=5, help="Events to publish before the stop.")
        parser.add_argument("--event-type", default="announcement", help="Event type to subscribe to.")
        parser.add_argument("--signal", choices=sorted(SIGNALS), default="TERM", help="Signal to stop with.")
        parser.add_argument("--timeout", type=float, default=30, help="Seconds to wait for the exit.")
        parser.add_argument(
            "--server",
            action="append",
            default=[],
            metavar="NAME=COMMAND",
            help=(
                "Another server to check side by side; {port} in COMMAND is replaced by the port. "
                "It must serve /sse/subscribe/<type>/ and accept POST /sse/publish/<type>/ with "
                "the --publish-token."
            ),
        )
        parser.add_argument(
            "--publish-token",
            metavar="TOKEN",
            help=(
                "Bearer token the servers accept on POST /sse/publish/<type>/ "
                "(default: this project's NOTIFICATIONS['PUBLISH_TOKEN'])."
            ),
        )
        parser.add_argument(
            "--env",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="An environment variable for every server started, such as the settings it reads.",
        )
        parser.add_argument("--no-default", action="store_true", help="Skip this project's daphne.")
        parser.add_argument("--json", action="store_true", help="Print one JSON line per server.")

    def handle(self, *args, **options) -> None:
        servers = [] if options["no_default"] else [("daphne (this project)", default_server_command())]
        for spec in options["server"]:
            name, separator, command = spec.partition("=")
            if not separator or not name or "{port}" not in command:
                raise CommandError(f"--server {spec!r} is not valid. Use NAME=COMMAND with {{port}} in it.")
            servers.append((name, command))
        if not servers:
            raise CommandError("There is no server to check: drop --no-default or add --server.")
        token = options["publish_token"] or setting("PUBLISH_TOKEN")
        if not token:
            raise CommandError(
                "There is no publish token: set NOTIFICATIONS['PUBLISH_TOKEN'] or pass --publish-token."
            )
        env = {}
        for spec in options["env"]:
            name, separator, value = spec.partition("=")
            if not separator or not name:
                raise CommandError(f"--env {spec!r} is not valid. Use NAME=VALUE.")
            env[name] = value
        # Each stream is a socket here and in the server.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        reports = []
        for name, command in servers:
            self.stderr.write(f"Checking {name} with {options['streams']} streams...")
            reports.append(
                run_stop_check(
                    name,
                    command,
                    streams=options["streams"],
                    events=options["events"],
                    event_type=options["event_type"],
                    publish_token=token,
                    env=env,
                    signum=SIGNALS[options["signal"]],
                    timeout=options["timeout"],
                    cwd=settings.BASE_DIR if hasattr(settings, "BASE_DIR") else None,
                )
            )
        if options["json"]:
            for report in reports:
                self.stdout.write(json.dumps(report.as_dict()))
        else:
            self.stdout.write(format_table(reports, options["signal"]))


def format_table(reports: list[StopReport], signal_name: str) -> str:
    rows = [
        ("streams open", lambda r: r.streams),
        ("events published", lambda r: r.events_published),
        ("streams ended cleanly", lambda r: r.ended_cleanly),
        ("farewell events received", lambda r: r.farewells),
        ("events lost", lambda r: r.events_lost),
        ("events duplicated", lambda r: r.events_duplicated),
        (
            f"seconds from SIG{signal_name} to exit",
            lambda r: "hung" if r.exit_seconds is None else f"{r.exit_seconds:.2f}",
        ),
        ("server CPU seconds from signal to exit", lambda r: r.exit_cpu_seconds),
        ("exit status", lambda r: "killed" if r.exit_status is None else r.exit_status),
        ("traceback lines", lambda r: r.traceback_lines),
        ("ERROR lines", lambda r: r.error_lines),
    ]
    header = ["", *(report.server for report in reports)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, value in rows:
        lines.append("| " + " | ".join([label, *(str(value(report)) for report in reports)]) + " |")
    return "\n".join(lines)
