from django.apps import AppConfig


class ProjectConfig(AppConfig):
    name = "project"
    verbose_name = "Demo"

    def ready(self):
        from . import receivers

        receivers.connect()
