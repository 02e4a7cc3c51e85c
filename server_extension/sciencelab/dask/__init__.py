"""Dask clusters from the notebook: admin templates, a per-user cluster manager, its REST and WebSocket API.

Pure core: `templates` (what admins declare), `options` (the user's options and their JSON Schema),
`limits`, `clusters` (the API's JSON and the records on disk), `connect` (the client code).
I/O: `manager.ClusterManager` and the `backends`. Thin handlers: `handlers`.
"""
