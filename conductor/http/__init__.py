"""HTTP plumbing shared by the conductor's endpoints (the task callbacks, and any endpoint for
operators): a threaded server with a connection cap (`server.JsonServer`), and a request
handler that enforces a whole-request deadline, a body limit, an optional bearer secret and
JSON answers, serves a health route, and keeps secrets out of the logs (`handler.JsonHandler`).
An endpoint subclasses JsonHandler with its routes; see `conductor.delegation.webhook`.
"""
