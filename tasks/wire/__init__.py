"""The Batch wire format's shapes, below the API and the dashboard: plain DRF serializers
named after the Batch schemas (TaskAddParameter, JobUpdateParameter, PoolAddParameter, ...),
`validate_wire` that turns their first problem into the Batch error, and what a reply never
shows (a pool's secrets). The API (tasks.api), the dashboard's forms (tasks.web) and the
admin validate with the same code; nothing here imports any of them."""
