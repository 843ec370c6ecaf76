"""The board's protocol on ZooKeeper, one module per concern: naming and documents (the layout
and what is stored), the shared context (retries, ACLs), posting, claims and the claims held,
outcomes, admin operations, dead letters, reads, presence, the incremental view and the watches
that feed it, and board events. JobBoard (jobboard.board) composes them; see docs/jobboard.md."""
