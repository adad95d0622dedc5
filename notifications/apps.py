from django.apps import AppConfig
from django.core import checks


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from . import lifecycle
        from .checks import check_deployment, check_settings

        checks.register(check_settings, "notifications")
        checks.register(check_deployment, "notifications", deploy=True)
        lifecycle.install()
