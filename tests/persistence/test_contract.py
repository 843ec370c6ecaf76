"""Conformance of every store (memory, SQLite, PostgreSQL) to the ExecutionStore contract."""

from __future__ import annotations

import time

import pytest

from persistence import (
    AtomRecord,
    AtomState,
    DelegationAlreadyCompleted,
    ExecutionChange,
    ExecutionState,
    ExecutionStore,
    Failure,
    Fenced,
    Intention,
    NewDelegation,
    NotSerializable,
    Ownership,
    UnknownDelegation,
    UnknownExecution,
)


def running(store: ExecutionStore, job_id: str = "job-1", epoch: int = 10) -> str:
    """A new execution taken over by 'alpha' with `epoch`; returns its id."""
    record = store.create_execution(job_id, "flow", "1", {"n": 1})
    store.take_over(record.id, epoch, "alpha")
    return record.id


def failure_of(exc: BaseException) -> Failure:
    try:
        raise exc
    except BaseException as raised:
        return Failure.from_exception(raised)


# -- create_execution ------------------------------------------------------------------------


def test_create_execution_starts_pending_at_epoch_zero(store: ExecutionStore) -> None:
    before = time.time()
    record = store.create_execution("job-1", "flow", "v2", {"n": 1, "names": ["a", "b"]})
    assert record.job_id == "job-1"
    assert (record.flow_name, record.flow_version) == ("flow", "v2")
    assert record.inputs == {"n": 1, "names": ["a", "b"]}
    assert record.state is ExecutionState.PENDING
    assert (record.epoch, record.owner) == (0, None)
    assert before - 1 <= record.created_at <= time.time() + 1
    assert record.finished_at is None and record.atoms == {}
    assert store.load(record.id) == record


def test_create_execution_is_idempotent_per_job(store: ExecutionStore) -> None:
    first = store.create_execution("job-1", "flow", "1", {"n": 1})
    store.take_over(first.id, 3, "alpha")
    store.save(first.id, 3, [AtomRecord("a", state=AtomState.SUCCESS, attempt=1, result=5)])
    again = store.create_execution("job-1", "flow", "1", {"n": 1})
    assert again.id == first.id
    assert again.epoch == 3 and again.atoms["a"].result == 5


def test_create_execution_of_another_flow_for_the_same_job_is_refused(
    store: ExecutionStore,
) -> None:
    store.create_execution("job-1", "flow", "1", {})
    with pytest.raises(ValueError, match="already has an execution of flow 'flow'"):
        store.create_execution("job-1", "other", "1", {})


def test_create_execution_with_non_json_inputs_writes_nothing(store: ExecutionStore) -> None:
    with pytest.raises(NotSerializable, match=r"inputs of job job-1\['when'\] is of type .*set"):
        store.create_execution("job-1", "flow", "1", {"when": {1, 2}})
    assert store.find_by_job("job-1") is None


# -- take_over -------------------------------------------------------------------------------


def test_take_over_raises_epoch_and_records_owner_history(store: ExecutionStore) -> None:
    record = store.create_execution("job-1", "flow", "1", {})
    taken = store.take_over(record.id, 7, "alpha")
    assert (taken.epoch, taken.owner) == (7, "alpha")
    store.save(record.id, 7, [AtomRecord("a", state=AtomState.RUNNING, attempt=1)])
    again = store.take_over(record.id, 9, "beta")
    assert (again.epoch, again.owner) == (9, "beta")
    assert again.atoms["a"].state is AtomState.RUNNING  # returned with its atoms
    owners = store.owners(record.id)
    assert [(o.epoch, o.owner) for o in owners] == [(7, "alpha"), (9, "beta")]
    assert all(isinstance(o, Ownership) for o in owners)
    assert owners[0].taken_at <= owners[1].taken_at


def test_take_over_by_the_same_claim_again_is_accepted_once_in_history(
    store: ExecutionStore,
) -> None:
    record = store.create_execution("job-1", "flow", "1", {})
    store.take_over(record.id, 7, "alpha")
    again = store.take_over(record.id, 7, "alpha")  # e.g. retried after an unknown commit
    assert (again.epoch, again.owner) == (7, "alpha")
    assert [(o.epoch, o.owner) for o in store.owners(record.id)] == [(7, "alpha")]


@pytest.mark.parametrize(("epoch", "owner"), [(7, "beta"), (6, "alpha"), (6, "beta"), (0, "x")])
def test_take_over_with_a_stale_or_rival_claim_is_fenced(
    store: ExecutionStore, epoch: int, owner: str
) -> None:
    record = store.create_execution("job-1", "flow", "1", {})
    store.take_over(record.id, 7, "alpha")
    with pytest.raises(Fenced) as raised:
        store.take_over(record.id, epoch, owner)
    assert (raised.value.epoch, raised.value.stored_epoch) == (epoch, 7)
    after = store.load(record.id)
    assert (after.epoch, after.owner) == (7, "alpha")
    assert len(store.owners(record.id)) == 1


def test_take_over_of_an_unknown_execution(store: ExecutionStore) -> None:
    with pytest.raises(UnknownExecution):
        store.take_over("no-such-id", 1, "alpha")


# -- open_execution (create + take over in one transaction) ---------------------------------


def test_open_execution_creates_and_takes_over_at_once(store: ExecutionStore) -> None:
    opened = store.open_execution("job-1", "flow", "1", {"n": 1}, epoch=7, owner="alpha")
    assert (opened.job_id, opened.state, opened.epoch, opened.owner) == (
        "job-1", ExecutionState.PENDING, 7, "alpha")
    assert opened.inputs == {"n": 1}
    assert opened == store.load(opened.id)  # what was returned is what was saved
    assert [(o.epoch, o.owner) for o in store.owners(opened.id)] == [(7, "alpha")]


def test_open_execution_resumes_the_jobs_execution_with_its_atoms(store: ExecutionStore) -> None:
    first = store.open_execution("job-1", "flow", "1", {}, epoch=7, owner="alpha")
    store.save(first.id, 7, [AtomRecord("a", state=AtomState.SUCCESS, attempt=1, result=3)])
    again = store.open_execution("job-1", "flow", "2", {}, epoch=9, owner="beta")
    assert again.id == first.id and again.flow_version == "1"  # the version it started with
    assert (again.epoch, again.owner) == (9, "beta")
    assert again.atoms["a"].result == 3
    same = store.open_execution("job-1", "flow", "1", {}, epoch=9, owner="beta")  # a retry
    assert same.epoch == 9
    assert [(o.epoch, o.owner) for o in store.owners(first.id)] == [(7, "alpha"), (9, "beta")]


def test_open_execution_with_a_stale_claim_is_fenced_and_changes_nothing(
    store: ExecutionStore,
) -> None:
    first = store.open_execution("job-1", "flow", "1", {}, epoch=7, owner="alpha")
    with pytest.raises(Fenced) as raised:
        store.open_execution("job-1", "flow", "1", {}, epoch=5, owner="beta")
    assert (raised.value.epoch, raised.value.stored_epoch) == (5, 7)
    assert (store.load(first.id).epoch, store.load(first.id).owner) == (7, "alpha")


def test_open_execution_of_another_flow_is_refused(store: ExecutionStore) -> None:
    store.open_execution("job-1", "flow", "1", {}, epoch=7, owner="alpha")
    with pytest.raises(ValueError, match="already has an execution of flow 'flow'"):
        store.open_execution("job-1", "other", "1", {}, epoch=9, owner="beta")
    assert store.find_by_job("job-1").epoch == 7  # type: ignore[union-attr]


# -- save ------------------------------------------------------------------------------------


def test_save_writes_whole_atom_rows_keyed_by_name(store: ExecutionStore) -> None:
    execution_id = running(store)
    started = time.time()
    store.save(execution_id, 10, [
        AtomRecord("a", state=AtomState.RUNNING, attempt=1, started_at=started),
        AtomRecord("b", kind="retry", state=AtomState.PENDING, intention=Intention.RETRY,
                   not_before=started + 30),
    ])
    done = AtomRecord("a", state=AtomState.SUCCESS, attempt=1, result={"rows": [1, 2.5, None]},
                      started_at=started, finished_at=started + 1.25)
    store.save(execution_id, 10, [done])
    atoms = store.load(execution_id).atoms
    assert set(atoms) == {"a", "b"}
    assert atoms["a"] == AtomRecord(
        "a", state=AtomState.SUCCESS, attempt=1, result={"rows": [1, 2.5, None]},
        started_at=pytest.approx(started, abs=1e-5),
        finished_at=pytest.approx(started + 1.25, abs=1e-5),
    )
    assert atoms["b"].kind == "retry" and atoms["b"].intention is Intention.RETRY
    assert atoms["b"].not_before == pytest.approx(started + 30, abs=1e-5)
    # A whole-row write: fields not given are reset, not merged.
    store.save(execution_id, 10, [AtomRecord("a", state=AtomState.PENDING)])
    assert store.load(execution_id).atoms["a"] == AtomRecord("a", state=AtomState.PENDING)


def test_save_keeps_failures_with_type_message_and_traceback(store: ExecutionStore) -> None:
    execution_id = running(store)
    failure = failure_of(KeyError("missing 'x'"))
    store.save(
        execution_id, 10,
        [AtomRecord("a", state=AtomState.FAILURE, attempt=2, failure=failure)],
        ExecutionChange(ExecutionState.REVERTED, failure=failure),
    )
    record = store.load(execution_id)
    assert record.atoms["a"].failure == failure
    assert record.failure == failure
    assert failure.type == "KeyError"
    assert "raise exc" in record.atoms["a"].failure.traceback  # type: ignore[union-attr]


def test_a_final_state_sets_finished_at_and_result(store: ExecutionStore) -> None:
    execution_id = running(store)
    store.save(execution_id, 10, execution=ExecutionChange(ExecutionState.RUNNING))
    assert store.load(execution_id).finished_at is None
    before = time.time()
    store.save(execution_id, 10, execution=ExecutionChange(ExecutionState.SUCCESS, {"total": 3}))
    record = store.load(execution_id)
    assert record.state is ExecutionState.SUCCESS and record.result == {"total": 3}
    assert record.finished_at is not None and record.finished_at >= before - 1
    assert record.updated_at >= record.created_at


def test_a_fenced_save_writes_nothing(store: ExecutionStore) -> None:
    execution_id = running(store, epoch=10)
    store.save(execution_id, 10, [AtomRecord("a", state=AtomState.RUNNING, attempt=1)])
    store.take_over(execution_id, 11, "beta")
    before = store.load(execution_id)
    with pytest.raises(Fenced) as raised:
        store.save(
            execution_id, 10,
            [AtomRecord("a", state=AtomState.SUCCESS, attempt=1, result=1),
             AtomRecord("b", state=AtomState.RUNNING, attempt=1)],
            ExecutionChange(ExecutionState.SUCCESS, result=1),
            [NewDelegation("b", 1, "hash-b")],
        )
    assert (raised.value.execution_id, raised.value.epoch) == (execution_id, 10)
    assert raised.value.stored_epoch == 11
    assert "another owner has taken over" in str(raised.value)
    assert store.load(execution_id) == before
    assert store.delegations(execution_id) == []


@pytest.mark.parametrize("shape", ["atoms", "execution", "delegations", "nothing"])
def test_every_shape_of_save_is_fenced(store: ExecutionStore, shape: str) -> None:
    """Each shape takes a different fence in SQL (atom upsert, UPDATE, locking read)."""
    execution_id = running(store, epoch=10)
    store.take_over(execution_id, 11, "beta")
    before = store.load(execution_id)
    arguments = {
        "atoms": {"atoms": [AtomRecord("a"), AtomRecord("b")]},
        "execution": {"execution": ExecutionChange(ExecutionState.FAILED)},
        "delegations": {"delegations": [NewDelegation("a", 1, "hash-a")]},
        "nothing": {},
    }[shape]
    with pytest.raises(Fenced):
        store.save(execution_id, 10, **arguments)  # type: ignore[arg-type]
    assert store.load(execution_id) == before
    assert store.delegations(execution_id) == []
    store.save(execution_id, 11, **arguments)  # type: ignore[arg-type]


def test_save_with_a_newer_epoch_than_stored_is_fenced_too(store: ExecutionStore) -> None:
    execution_id = running(store, epoch=10)
    with pytest.raises(Fenced):
        store.save(execution_id, 11, [AtomRecord("a")])  # never took over with 11
    assert store.load(execution_id).atoms == {}


def test_a_non_json_result_names_the_task_and_type_and_writes_nothing(
    store: ExecutionStore,
) -> None:
    execution_id = running(store)

    class Money:
        pass

    with pytest.raises(NotSerializable) as raised:
        store.save(execution_id, 10, [
            AtomRecord("fine", state=AtomState.SUCCESS, attempt=1, result=1),
            AtomRecord("pay", state=AtomState.SUCCESS, attempt=1, result={"amount": Money()}),
        ], ExecutionChange(ExecutionState.RUNNING))
    message = str(raised.value)
    assert "task 'pay'" in message and "['amount']" in message and "Money" in message
    assert isinstance(raised.value, TypeError)
    record = store.load(execution_id)
    assert record.atoms == {} and record.state is ExecutionState.PENDING


@pytest.mark.parametrize(
    ("bad", "expected"),
    [(float("nan"), "nan"), ({1: "a"}, "dict key 1 of type int"), (b"raw", "bytes")],
)
def test_values_json_would_silently_change_are_refused(
    store: ExecutionStore, bad: object, expected: str
) -> None:
    execution_id = running(store)
    with pytest.raises(NotSerializable, match=expected):
        store.save(execution_id, 10, [AtomRecord("a", result=bad)])
    with pytest.raises(NotSerializable, match=f"result of execution {execution_id}"):
        store.save(execution_id, 10, execution=ExecutionChange(ExecutionState.SUCCESS, bad))
    assert store.load(execution_id).atoms == {}


def _circular_list() -> list[object]:
    value: list[object] = [1]
    value.append({"back": value})
    return value


def _deep(levels: int) -> list[object]:
    value: list[object] = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("bad", "expected"),
    [(_circular_list(), r"task 'a' .*\[1\]\['back'\] contains itself"),
     (_deep(100_000), "task 'a' .* nested too deeply")],
    ids=["circular", "deep"],
)
def test_circular_and_bottomless_results_get_a_clear_error(
    store: ExecutionStore, bad: object, expected: str
) -> None:
    execution_id = running(store)
    with pytest.raises(NotSerializable, match=expected):
        store.save(execution_id, 10, [AtomRecord("a", result=bad)])
    assert store.load(execution_id).atoms == {}


def test_results_come_back_as_json_values(store: ExecutionStore) -> None:
    execution_id = running(store)
    result = {"tuple": (1, 2), "z": "last", "a": "first", "big": 2**62, "tiny": 1e-300,
              "huge": 1e300, "text": "naïve ☃ \x00 end", "nested": [{"k": [True, None]}]}
    store.save(execution_id, 10, [AtomRecord("a", state=AtomState.SUCCESS, result=result)])
    back = store.load(execution_id).atoms["a"].result
    assert back == {**result, "tuple": [1, 2]}
    assert list(back) == list(result)  # key order kept
    assert isinstance(back["huge"], float) and isinstance(back["big"], int)


def test_no_small_size_cap_on_results(store: ExecutionStore) -> None:
    execution_id = running(store)
    big = {"blob": "x" * 5_000_000, "items": list(range(100_000))}
    store.save(execution_id, 10, [AtomRecord("a", state=AtomState.SUCCESS, result=big)])
    assert store.load(execution_id).atoms["a"].result == big


def test_save_to_an_unknown_execution(store: ExecutionStore) -> None:
    with pytest.raises(UnknownExecution):
        store.save("no-such-id", 1, [AtomRecord("a")])


# -- reads -----------------------------------------------------------------------------------


def test_load_and_find_by_job(store: ExecutionStore) -> None:
    execution_id = running(store, "job-7")
    store.save(execution_id, 10, [AtomRecord("a", state=AtomState.RUNNING, attempt=1)])
    found = store.find_by_job("job-7")
    assert found is not None and found == store.load(execution_id)
    assert found.atoms["a"].attempt == 1
    assert store.find_by_job("job-8") is None
    with pytest.raises(UnknownExecution):
        store.load("no-such-id")
    with pytest.raises(UnknownExecution):
        store.owners("no-such-id")


def test_owners_of_a_never_taken_execution_is_empty(store: ExecutionStore) -> None:
    record = store.create_execution("job-1", "flow", "1", {})
    assert store.owners(record.id) == []


def test_history_newest_first_filtered_without_atoms(store: ExecutionStore) -> None:
    ids = []
    for n in range(4):
        execution_id = running(store, f"job-{n}")
        flow_state = ExecutionState.SUCCESS if n % 2 else ExecutionState.FAILED
        store.save(execution_id, 10, [AtomRecord("a", state=AtomState.SUCCESS)],
                   ExecutionChange(flow_state))
        ids.append(execution_id)
    newest_first = list(reversed(ids))
    history = store.history()
    assert [r.id for r in history] == newest_first
    assert all(r.atoms == {} for r in history)
    assert [r.id for r in store.history(limit=2)] == newest_first[:2]
    succeeded = store.history(states=[ExecutionState.SUCCESS])
    assert [r.id for r in succeeded] == [ids[3], ids[1]]
    assert store.history(flow_name="other") == []
    assert len(store.history(flow_name="flow", states={ExecutionState.FAILED})) == 2


def test_collect_garbage_deletes_only_old_finished_executions(store: ExecutionStore) -> None:
    finished = running(store, "job-done")
    store.save(finished, 10, [AtomRecord("a", state=AtomState.DELEGATED)],
               ExecutionChange(ExecutionState.SUCCESS), [NewDelegation("a", 1, "hash-done")])
    unfinished = running(store, "job-running")
    assert store.collect_garbage(older_than=3600) == 0
    assert store.collect_garbage(older_than=0) == 1
    assert store.find_by_job("job-done") is None
    with pytest.raises(UnknownExecution):
        store.owners(finished)
    with pytest.raises(UnknownDelegation):
        store.delegation("hash-done")
    assert store.delegations(finished) == []
    assert store.load(unfinished).state is ExecutionState.PENDING
    # The job id is free again.
    assert store.create_execution("job-done", "flow", "1", {}).id != finished


# -- delegations -----------------------------------------------------------------------------


def test_delegations_are_saved_with_their_atom_and_completed_once(
    store: ExecutionStore,
) -> None:
    execution_id = running(store, "job-d")
    deadline = time.time() + 3600
    store.save(execution_id, 10,
               [AtomRecord("ship", state=AtomState.DELEGATED, attempt=1)],
               delegations=[NewDelegation("ship", 1, "hash-1", deadline)])
    store.save(execution_id, 10, delegations=[NewDelegation("bill", 2, "hash-2")])
    saved = store.delegation("hash-1")
    assert (saved.execution_id, saved.job_id, saved.atom_name, saved.attempt) == (
        execution_id, "job-d", "ship", 1)
    assert saved.deadline == pytest.approx(deadline, abs=1e-5)
    assert saved.completed_at is None and saved.outcome is None
    assert [d.token_hash for d in store.delegations(execution_id)] == ["hash-1", "hash-2"]

    done = store.complete_delegation("hash-1", {"result": {"tracking": "XY1"}})
    assert done.completed_at is not None and done.outcome == {"result": {"tracking": "XY1"}}
    assert store.delegation("hash-1") == done
    with pytest.raises(DelegationAlreadyCompleted, match="'ship' in job job-d"):
        store.complete_delegation("hash-1", {"result": "again"})
    assert store.delegation("hash-1").outcome == {"result": {"tracking": "XY1"}}


def test_delegation_errors(store: ExecutionStore) -> None:
    execution_id = running(store)
    store.save(execution_id, 10, delegations=[NewDelegation("a", 1, "hash-a")])
    with pytest.raises(UnknownDelegation):
        store.delegation("nope")
    with pytest.raises(UnknownDelegation):
        store.complete_delegation("nope", {"result": 1})
    with pytest.raises(NotSerializable, match="delegation outcome"):
        store.complete_delegation("hash-a", {"result": object()})
    assert store.delegation("hash-a").completed_at is None


def test_a_token_hash_of_another_delegation_is_refused_and_nothing_saved(
    store: ExecutionStore,
) -> None:
    execution_id = running(store)
    store.save(execution_id, 10, delegations=[NewDelegation("a", 1, "hash-a")])
    with pytest.raises(ValueError, match="token hash is already used"):
        store.save(execution_id, 10, [AtomRecord("b", state=AtomState.DELEGATED)],
                   delegations=[NewDelegation("b", 1, "hash-a")])
    assert store.load(execution_id).atoms == {}
    # The same delegation saved again (a retried save) is not an error.
    store.save(execution_id, 10, delegations=[NewDelegation("a", 1, "hash-a")])
    assert len(store.delegations(execution_id)) == 1


def test_updated_at_moves_with_execution_changes_not_atom_only_saves(
    store: ExecutionStore,
) -> None:
    execution_id = running(store)
    taken = store.load(execution_id).updated_at
    store.save(execution_id, 10, [AtomRecord("a", state=AtomState.RUNNING, attempt=1)])
    assert store.load(execution_id).updated_at == taken
    store.save(execution_id, 10, execution=ExecutionChange(ExecutionState.RUNNING))
    assert store.load(execution_id).updated_at > taken
