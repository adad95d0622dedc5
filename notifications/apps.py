from django.apps import AppConfig
from django.core import checks


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from . import lifecycle, tasks
        from .access import close_streams_on_logout
        from .checks import check_deployment, check_security, check_servers, check_settings
        from .dependencies import check_optional_libraries, check_tasks_available, check_versions

        checks.register(check_settings, "notifications")
        checks.register(check_security, "notifications")
        checks.register(check_deployment, "notifications", deploy=True)
        user_logged_out.connect(close_streams_on_logout, dispatch_uid="notifications.access")
        checks.register(check_servers, "notifications")
        checks.register(check_versions, "notifications")
        checks.register(check_optional_libraries, "notifications")
        checks.register(check_tasks_available, "notifications")
        lifecycle.install()
        if tasks.available():
            from .tasks import receivers
            from .tasks.checks import check_tasks

            checks.register(check_tasks, "notifications")
            receivers.connect()
