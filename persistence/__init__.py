"""Saved executions: records, the store contract, fencing, JSON serialization.

Knows nothing of ZooKeeper; never imports `conductor` or `jobboard`. The names below are loaded
on first use (PEP 562): importing the plain records (`persistence.records`) loads no SQL code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "AtomRecord": "persistence.records",
    "AtomState": "persistence.records",
    "DelegationAlreadyCompleted": "persistence.errors",
    "DelegationRecord": "persistence.records",
    "ExecutionChange": "persistence.records",
    "ExecutionRecord": "persistence.records",
    "ExecutionState": "persistence.records",
    "ExecutionStore": "persistence.contract",
    "Failure": "persistence.records",
    "Fenced": "persistence.errors",
    "Intention": "persistence.records",
    "JSONValue": "persistence.records",
    "MemoryStore": "persistence.memory",
    "NewDelegation": "persistence.records",
    "NotSerializable": "persistence.errors",
    "Ownership": "persistence.records",
    "PersistenceError": "persistence.errors",
    "SchemaOutdated": "persistence.errors",
    "SqlStore": "persistence.sqlstore",
    "StoreOptions": "persistence.connect",
    "StoreUnavailable": "persistence.errors",
    "UnknownDelegation": "persistence.errors",
    "UnknownExecution": "persistence.errors",
    "open_store": "persistence.opening",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
