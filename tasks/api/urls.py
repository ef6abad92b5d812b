"""Routes at the Batch paths (no account segment: the account is in the signature)."""

from django.urls import path, re_path

from . import files, views

app_name = "api"

urlpatterns = [
    path("jobs", views.JobListApi.as_view(), name="jobs"),
    path("jobs/<str:job_id>", views.JobApi.as_view(), name="job"),
    path("jobs/<str:job_id>/terminate", views.JobTerminateApi.as_view(), name="job-terminate"),
    path("jobs/<str:job_id>/taskcounts", views.JobTaskCountsApi.as_view(), name="job-taskcounts"),
    path("jobs/<str:job_id>/tasks", views.TaskListApi.as_view(), name="tasks"),
    path("jobs/<str:job_id>/addtaskcollection", views.TaskCollectionApi.as_view(), name="task-collection"),
    path("jobs/<str:job_id>/tasks/<str:task_id>", views.TaskApi.as_view(), name="task"),
    path("jobs/<str:job_id>/tasks/<str:task_id>/terminate", views.TaskTerminateApi.as_view(), name="task-terminate"),
    path("jobs/<str:job_id>/tasks/<str:task_id>/reactivate", views.TaskReactivateApi.as_view(), name="task-reactivate"),
    path("jobs/<str:job_id>/tasks/<str:task_id>/subtasksinfo", views.SubtaskListApi.as_view(), name="task-subtasks"),
    path("jobs/<str:job_id>/tasks/<str:task_id>/files", files.TaskFileListApi.as_view(), name="task-files"),
    # The file path arrives percent-encoded (wd%2Fout.txt) and decoded by WSGI: a path.
    path("jobs/<str:job_id>/tasks/<str:task_id>/files/<path:file_path>", files.TaskFileApi.as_view(),
         name="task-file"),
    path("pools", views.PoolListApi.as_view(), name="pools"),
    path("pools/<str:pool_id>", views.PoolApi.as_view(), name="pool"),
    path("pools/<str:pool_id>/nodes", views.NodeListApi.as_view(), name="nodes"),
    path("pools/<str:pool_id>/nodes/<str:node_id>", views.NodeApi.as_view(), name="node"),
    path("pools/<str:pool_id>/nodes/<str:node_id>/files", files.NodeFileListApi.as_view(), name="node-files"),
    path("pools/<str:pool_id>/nodes/<str:node_id>/files/<path:file_path>", files.NodeFileApi.as_view(),
         name="node-file"),
    # Every other Batch resource root: authenticated, then a clear "not supported" error.
    re_path(
        r"^(?:jobs|pools|jobschedules|applications|certificates|poolusagemetrics|nodecounts|supportedimages"
        r"|lifetimejobstats|lifetimepoolstats)(?:/.*)?$",
        views.UnsupportedApi.as_view(),
        name="unsupported",
    ),
]
