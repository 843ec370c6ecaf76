"""Delegated attempts as the engine runs them: tokens, issuing delegations from a running
attempt, the rules that settle a delegated attempt, and the runner's bookkeeping of them.

Completing a delegation from outside (CLI, Python, HTTP), the deadline keeper and the HTTP
front end live above, in `conductor.delegation`. See docs/delegation.md.
"""
