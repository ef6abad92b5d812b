"""{% job_prep_release job %}: the job page's "Preparation and release" section (one query,
none for a job with neither task)."""

from __future__ import annotations

from django import template

from tasks.nodehost.layout import task_key_within_node
from tasks.operations.job_ends import PREPARATION, PREPARATION_ID, RELEASE, RELEASE_ID
from tasks.queries.job_preparations import list_job_preparations

register = template.Library()
SHOWN = 200  # nodes listed on the page; the API lists them all


@register.inclusion_tag("tasks/_job_prep_release.html", takes_context=True)
def job_prep_release(context, job) -> dict:
    has = {"preparation": PREPARATION in job.spec, "release": RELEASE in job.spec}
    page = list_job_preparations(job, limit=SHOWN) if any(has.values()) else None
    records, more = (page.rows, page.more) if page else ([], False)
    rows = [
        {
            "record": r,
            "pool_id": r.pool_name,
            "node_id": r.node_name,
            "gone": r.node_id is None,
            "prep_dir": task_key_within_node(job.job_id, PREPARATION_ID),
            "release_dir": task_key_within_node(job.job_id, RELEASE_ID),
        }
        for r in records
    ]
    return {
        "access": context.get("access"),
        "job": job,
        "has": has,
        "rows": rows,
        "more": more,
        "preparation": job.spec.get(PREPARATION) or {},
        "release": job.spec.get(RELEASE) or {},
    }
