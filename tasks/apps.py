from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Batch"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from tasks import checks  # noqa: F401  (registers the deployment checks)
        from tasks.api import schema  # noqa: F401  (registers the Shared Key scheme)
        from tasks.providers import checks  # noqa: F401  (registers the vmSize table check)
