"""Saved executions: records, the store contract, fencing, JSON serialization.

Knows nothing of ZooKeeper; never imports `conductor` or `jobboard`.
"""

from persistence.connect import StoreOptions
from persistence.contract import ExecutionStore
from persistence.errors import (
    DelegationAlreadyCompleted,
    Fenced,
    NotSerializable,
    PersistenceError,
    SchemaOutdated,
    StoreUnavailable,
    UnknownDelegation,
    UnknownExecution,
)
from persistence.memory import MemoryStore
from persistence.opening import open_store
from persistence.records import (
    AtomRecord,
    AtomState,
    DelegationRecord,
    ExecutionChange,
    ExecutionRecord,
    ExecutionState,
    Failure,
    Intention,
    JSONValue,
    NewDelegation,
    Ownership,
)
from persistence.sqlstore import SqlStore

__all__ = [
    "AtomRecord",
    "AtomState",
    "DelegationAlreadyCompleted",
    "DelegationRecord",
    "ExecutionChange",
    "ExecutionRecord",
    "ExecutionState",
    "ExecutionStore",
    "Failure",
    "Fenced",
    "Intention",
    "JSONValue",
    "MemoryStore",
    "NewDelegation",
    "NotSerializable",
    "Ownership",
    "PersistenceError",
    "SchemaOutdated",
    "SqlStore",
    "StoreOptions",
    "StoreUnavailable",
    "UnknownDelegation",
    "UnknownExecution",
    "open_store",
]
