"""The rules layer: the only code that writes Batch state. Interfaces (API, dashboard,
admin, node agents, sweeps) call these operations and their `can_*` forms."""
