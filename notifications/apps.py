from django.apps import AppConfig
from django.core import checks


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from . import lifecycle, receivers
        from .checks import check_deployment, check_settings, check_tasks

        checks.register(check_settings, "notifications")
        checks.register(check_deployment, "notifications", deploy=True)
        checks.register(check_tasks, "notifications")
        lifecycle.install()
        receivers.connect()
