"""The compute-node agent (`manage.py runnode`): claim work, run it, report through the
rules layer. What it keeps on the host (layout, disk, storage, users) is tasks.nodehost."""
