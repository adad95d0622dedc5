import getpass
import os

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

PASSWORD_ENV = "DJANGO_USER_PASSWORD"


class Command(BaseCommand):
    help = (
        "Create an ordinary (not staff) user, who logs in at /accounts/login/ and follows their own "
        f"task runs. Asks for the password, or reads it from ${PASSWORD_ENV}."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        users = get_user_model()
        if users.objects.filter(**{users.USERNAME_FIELD: username}).exists():
            raise CommandError(f"A user named {username!r} exists already.")
        password = os.environ.get(PASSWORD_ENV) or self.ask_password()
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        users.objects.create_user(username, password=password)
        self.stdout.write(f"User {username!r} created; they log in at /accounts/login/.")

    def ask_password(self) -> str:
        password = getpass.getpass("Password: ")
        if not password or password != getpass.getpass("Password (again): "):
            raise CommandError("The passwords are empty or do not match.")
        return password
