"""Routes at the Batch paths (no account segment: the account is in the signature)."""

from django.urls import path, re_path

from . import files, job_prep, job_schedules, pools, views

app_name = "api"

urlpatterns = [
    # Most called first: a route is found by trying each in turn.
    path("jobs/<str:job_id>/tasks/<str:task_id>", views.TaskApi.as_view(), name="task"),
    path("jobs", views.JobListApi.as_view(), name="jobs"),
    path("jobs/<str:job_id>", views.JobApi.as_view(), name="job"),
    path("jobs/<str:job_id>/terminate", views.JobTerminateApi.as_view(), name="job-terminate"),
    path("jobs/<str:job_id>/disable", views.JobDisableApi.as_view(), name="job-disable"),
    path("jobs/<str:job_id>/enable", views.JobEnableApi.as_view(), name="job-enable"),
    path("jobs/<str:job_id>/taskcounts", views.JobTaskCountsApi.as_view(), name="job-taskcounts"),
    path(
        "jobs/<str:job_id>/jobpreparationandreleasetaskstatus",
        job_prep.JobPreparationStatusListApi.as_view(),
        name="job-preparation-status",
    ),
    path("jobs/<str:job_id>/tasks", views.TaskListApi.as_view(), name="tasks"),
    path(
        "jobs/<str:job_id>/addtaskcollection",
        views.TaskCollectionApi.as_view(),
        name="task-collection",
    ),
    path(
        "jobs/<str:job_id>/tasks/<str:task_id>/terminate",
        views.TaskTerminateApi.as_view(),
        name="task-terminate",
    ),
    path(
        "jobs/<str:job_id>/tasks/<str:task_id>/reactivate",
        views.TaskReactivateApi.as_view(),
        name="task-reactivate",
    ),
    path(
        "jobs/<str:job_id>/tasks/<str:task_id>/subtasksinfo",
        views.SubtaskListApi.as_view(),
        name="task-subtasks",
    ),
    path(
        "jobs/<str:job_id>/tasks/<str:task_id>/files",
        files.TaskFileListApi.as_view(),
        name="task-files",
    ),
    # The file path arrives percent-encoded (wd%2Fout.txt) and decoded by WSGI: a path.
    path(
        "jobs/<str:job_id>/tasks/<str:task_id>/files/<path:file_path>",
        files.TaskFileApi.as_view(),
        name="task-file",
    ),
    path("jobschedules", job_schedules.JobScheduleListApi.as_view(), name="job-schedules"),
    path(
        "jobschedules/<str:schedule_id>",
        job_schedules.JobScheduleApi.as_view(),
        name="job-schedule",
    ),
    path(
        "jobschedules/<str:schedule_id>/disable",
        job_schedules.JobScheduleDisableApi.as_view(),
        name="job-schedule-disable",
    ),
    path(
        "jobschedules/<str:schedule_id>/enable",
        job_schedules.JobScheduleEnableApi.as_view(),
        name="job-schedule-enable",
    ),
    path(
        "jobschedules/<str:schedule_id>/terminate",
        job_schedules.JobScheduleTerminateApi.as_view(),
        name="job-schedule-terminate",
    ),
    path(
        "jobschedules/<str:schedule_id>/jobs",
        job_schedules.JobScheduleJobListApi.as_view(),
        name="job-schedule-jobs",
    ),
    path("pools", pools.PoolListApi.as_view(), name="pools"),
    path("pools/<str:pool_id>", pools.PoolApi.as_view(), name="pool"),
    path(
        "pools/<str:pool_id>/updateproperties",
        pools.PoolUpdatePropertiesApi.as_view(),
        name="pool-update",
    ),
    path("pools/<str:pool_id>/resize", pools.PoolResizeApi.as_view(), name="pool-resize"),
    path(
        "pools/<str:pool_id>/stopresize", pools.PoolStopResizeApi.as_view(), name="pool-stop-resize"
    ),
    path(
        "pools/<str:pool_id>/removenodes",
        pools.PoolRemoveNodesApi.as_view(),
        name="pool-remove-nodes",
    ),
    path(
        "pools/<str:pool_id>/enableautoscale",
        pools.PoolEnableAutoScaleApi.as_view(),
        name="pool-enable-autoscale",
    ),
    path(
        "pools/<str:pool_id>/disableautoscale",
        pools.PoolDisableAutoScaleApi.as_view(),
        name="pool-disable-autoscale",
    ),
    path(
        "pools/<str:pool_id>/evaluateautoscale",
        pools.PoolEvaluateAutoScaleApi.as_view(),
        name="pool-evaluate-autoscale",
    ),
    path("nodecounts", pools.PoolNodeCountsApi.as_view(), name="node-counts"),
    path("supportedimages", pools.SupportedImagesApi.as_view(), name="supported-images"),
    path("pools/<str:pool_id>/nodes", pools.NodeListApi.as_view(), name="nodes"),
    path("pools/<str:pool_id>/nodes/<str:node_id>", pools.NodeApi.as_view(), name="node"),
    path(
        "pools/<str:pool_id>/nodes/<str:node_id>/reboot",
        pools.NodeRebootApi.as_view(),
        name="node-reboot",
    ),
    path(
        "pools/<str:pool_id>/nodes/<str:node_id>/reimage",
        pools.NodeReimageApi.as_view(),
        name="node-reimage",
    ),
    path(
        "pools/<str:pool_id>/nodes/<str:node_id>/disablescheduling",
        pools.NodeDisableSchedulingApi.as_view(),
        name="node-disable-scheduling",
    ),
    path(
        "pools/<str:pool_id>/nodes/<str:node_id>/enablescheduling",
        pools.NodeEnableSchedulingApi.as_view(),
        name="node-enable-scheduling",
    ),
    path(
        "pools/<str:pool_id>/nodes/<str:node_id>/files",
        files.NodeFileListApi.as_view(),
        name="node-files",
    ),
    path(
        "pools/<str:pool_id>/nodes/<str:node_id>/files/<path:file_path>",
        files.NodeFileApi.as_view(),
        name="node-file",
    ),
    re_path(
        r"^pools/(?P<pool_id>[^/]+)/nodes/(?P<node_id>[^/]+)/(?P<operation>users|remoteloginsettings|rdp"
        r"|uploadbatchservicelogs|start|deallocate|extensions)(?P<rest>/.*)?$",
        pools.NodeUnsupportedApi.as_view(),
        name="node-unsupported",
    ),
    # Every other operation of the Batch API (the 15.x and 14.x SDKs' paths): authenticated,
    # then a clear "not supported" error. Any other path names no Batch resource: InvalidUri.
    re_path(
        r"^(?:"
        + "|".join(
            p.replace("ID", r"[^/]+")
            for p in (
                r"applications(?:/ID)?",
                r"certificates(?:\(.*\)(?:/canceldelete)?)?",
                r"pools/ID/upgradeos",
                r"pools/ID/nodes/ID/upgradeos",
                r"poolusagemetrics|lifetimejobstats|lifetimepoolstats",
            )
        )
        + r")$",
        views.UnsupportedApi.as_view(),
        name="unsupported",
    ),
]
