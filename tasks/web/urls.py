"""Dashboard routes (under /web/). Names are entity-first: web:job, web:task-terminate."""

from django.urls import path

from . import views

app_name = "web"

_job = "<str:account>/jobs/<str:job_id>/"
_task = _job + "tasks/<str:task_id>/"

urlpatterns = [
    path("", views.job_list, name="jobs"),
    path("audit/", views.audit_list, name="audit"),
    path("bulk/<int:pk>/", views.bulk_detail, name="bulk"),
    path("<str:account>/pools/", views.pool_list, name="pools"),
    path("<str:account>/pools/<str:pool_id>/nodes/<str:node_id>/", views.node_detail, name="node"),
    path(_job, views.job_detail, name="job"),
    path(_job + "count/", views.job_count, name="job-count"),
    path(_job + "export.csv", views.job_export, name="job-export"),
    path(_job + "bulk/", views.job_bulk, name="job-bulk"),
    path(_job + "triage/", views.job_triage, name="job-triage"),
    path(_job + "timeline/", views.job_timeline, name="job-timeline"),
    path(_job + "add/", views.task_add, name="task-add"),
    path(_task, views.task_detail, name="task"),
    path(_task + "terminate/", views.task_action, {"action": "terminate"}, name="task-terminate"),
    path(_task + "reactivate/", views.task_action, {"action": "reactivate"}, name="task-reactivate"),
    path(_task + "delete/", views.task_action, {"action": "delete"}, name="task-delete"),
    path(_task + "update/", views.task_update, name="task-update"),
    path(_task + "output/", views.task_output, name="task-output"),
    path(_task + "files/<path:name>", views.task_file, name="task-file"),
]
