from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Batch"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The OpenAPI extensions are registered where the schema is served (batchsite/urls.py),
        # not here: importing drf-spectacular costs every process, node agents included,
        # about a third of its start (1.2 s of 3.8 s on a loaded 2-CPU machine).
        from tasks import checks  # noqa: F401  (registers the deployment checks)
        from tasks.providers import checks as provider_checks  # noqa: F401  (the vmSize table check)
