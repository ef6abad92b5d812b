"""Dashboard routes (under /web/). Names are entity-first: web:job, web:task-terminate."""

from django.urls import path

from tasks.operations.pool_actions import NODE_ACTIONS

from . import job_page, job_schedules, pool_views, views

app_name = "web"

_job = "<str:account>/jobs/<str:job_id>/"
_task = _job + "tasks/<str:task_id>/"
_pool = "<str:account>/pools/<str:pool_id>/"
_node = _pool + "nodes/<str:node_id>/"
_schedule = "<str:account>/jobschedules/<str:schedule_id>/"

urlpatterns = [
    path("", views.job_list, name="jobs"),
    path("audit/", views.audit_list, name="audit"),
    path("bulk/<int:pk>/", views.bulk_detail, name="bulk"),
    path("bulk/<int:pk>/stop/", views.bulk_stop, name="bulk-stop"),
    path("pools/", pool_views.pool_index, name="pool-index"),
    path("<str:account>/pools/", pool_views.pool_list, name="pools"),
    path(_pool, pool_views.pool_detail, name="pool"),
    path(_pool + "resize/", pool_views.pool_resize, name="pool-resize"),
    path(
        _pool + "stop-resize/",
        pool_views.pool_action,
        {"action": "stop-resize"},
        name="pool-stop-resize",
    ),
    path(_pool + "autoscale/", pool_views.pool_autoscale, name="pool-enable-autoscale"),
    path(
        _pool + "autoscale/disable/",
        pool_views.pool_action,
        {"action": "disable-autoscale"},
        name="pool-disable-autoscale",
    ),
    path(_pool + "autoscale/evaluate/", pool_views.pool_evaluate, name="pool-evaluate-autoscale"),
    path(_pool + "delete/", pool_views.pool_action, {"action": "delete"}, name="pool-delete"),
    path(_node, pool_views.node_detail, name="node"),
    path(_node + "output/", pool_views.node_output, name="node-output"),
    path(_node + "files/", pool_views.node_files, name="node-files"),
    path(_node + "files/<path:name>", pool_views.node_file, name="node-file"),
    *[
        path(
            _node + f"{action}/", pool_views.node_action, {"action": action}, name=f"node-{action}"
        )
        for action in NODE_ACTIONS
    ],
    path("jobschedules/", job_schedules.job_schedule_list, name="job-schedules"),
    path(_schedule, job_schedules.job_schedule_detail, name="job-schedule"),
    *[
        path(
            _schedule + f"{action}/",
            job_schedules.job_schedule_action,
            {"action": action},
            name=f"job-schedule-{action}",
        )
        for action in ("disable", "enable", "terminate")
    ],
    path(_job, views.job_detail, name="job"),
    path(
        _job + "disable/", job_schedules.job_state_action, {"action": "disable"}, name="job-disable"
    ),
    path(_job + "enable/", job_schedules.job_state_action, {"action": "enable"}, name="job-enable"),
    path(
        _job + "terminate/", job_page.job_end_action, {"action": "terminate"}, name="job-terminate"
    ),
    path(_job + "delete/", job_page.job_end_action, {"action": "delete"}, name="job-delete"),
    path(_job + "update/", job_page.job_update, name="job-update"),
    path(_job + "count/", views.job_count, name="job-count"),
    path(_job + "export.csv", views.job_export, name="job-export"),
    path(_job + "bulk/", views.job_bulk, name="job-bulk"),
    path(_job + "triage/", views.job_triage, name="job-triage"),
    path(_job + "timeline/", views.job_timeline, name="job-timeline"),
    path(_job + "analytics/", views.job_analytics, name="job-analytics"),
    path(_job + "add/", views.task_add, name="task-add"),
    path(_task, views.task_detail, name="task"),
    path(_task + "terminate/", views.task_action, {"action": "terminate"}, name="task-terminate"),
    path(
        _task + "reactivate/", views.task_action, {"action": "reactivate"}, name="task-reactivate"
    ),
    path(_task + "delete/", views.task_action, {"action": "delete"}, name="task-delete"),
    path(_task + "update/", views.task_update, name="task-update"),
    path(_task + "output/", views.task_output, name="task-output"),
    path(_task + "output/chunk/", views.task_output_chunk, name="task-output-chunk"),
    path(_task + "files/<path:name>", views.task_file, name="task-file"),
]
