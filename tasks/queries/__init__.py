"""The read layer: every read the API, the dashboard, the admin and the export make, in
modules named for what they hold. Nothing here writes.

  pager             the one keyset pager and cursor format (API $skiptoken, dashboard links,
                    CSV export chunks)
  accounts jobs tasks job_schedules pools nodes job_preparations
                    scoped lookups (404s as Batch errors) and keyset-paged lists
  task_list         a job's task list as the dashboard filters and sorts it
  dependencies      what a task waits for; which active tasks can never run
  dashboard         the dashboard's other lists (jobs, audit trail, failure groups)
"""
