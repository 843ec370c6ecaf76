"""Persistent recursive watches on kazoo: one event per node change, kept across reconnects."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import UnimplementedError
from kazoo.protocol.states import EventType, WatchedEvent

from jobboard.errors import ZooKeeperTooOld
from jobboard.testing.zkserver import ZooKeeperServers
from jobboard.zk import zkwatch
from jobboard.zk.zkwatch import (
    PERSISTENT,
    PERSISTENT_RECURSIVE,
    PersistentRecursiveWatch,
    add_watch,
    remove_watch,
)
from tests.fixtures.zookeeper import ZkClientFactory
from tests.jobboard.conftest import drop_connection, expire_session


class Recorder:
    """Collects watch events; `next()` waits for one with a deadline."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.threads: set[str] = set()

    def __call__(self, event: WatchedEvent) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.put((event.type, event.path))

    def next(self, timeout: float = 10.0) -> tuple[str, str]:
        return self.events.get(timeout=timeout)

    def take(self, count: int) -> list[tuple[str, str]]:
        return [self.next() for _ in range(count)]

    def assert_quiet(self) -> None:
        assert self.events.empty(), list(self.events.queue)


def test_recursive_watch_delivers_one_event_per_node_change(
    zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    client = zk_client_factory()
    client.ensure_path(zk_root + "/w")
    client.ensure_path(zk_root + "/elsewhere")
    recorder = Recorder()
    add_watch(client, zk_root + "/w", recorder, PERSISTENT_RECURSIVE)
    client.create(zk_root + "/w/a", b"1")
    client.set(zk_root + "/w/a", b"2")
    client.create(zk_root + "/w/a/deep", b"")
    client.delete(zk_root + "/w/a/deep")
    client.create(zk_root + "/elsewhere/x")  # not below the watch
    client.create(zk_root + "/w/b")
    assert recorder.take(5) == [
        (EventType.CREATED, zk_root + "/w/a"),
        (EventType.CHANGED, zk_root + "/w/a"),
        (EventType.CREATED, zk_root + "/w/a/deep"),
        (EventType.DELETED, zk_root + "/w/a/deep"),
        (EventType.CREATED, zk_root + "/w/b"),
    ]
    recorder.assert_quiet()
    # Delivered on kazoo's callback thread, not on the connection thread nor ours.
    assert len(recorder.threads) == 1
    assert threading.current_thread().name not in recorder.threads


def test_persistent_watch_stays_armed_and_coexists_with_one_shot_watches(
    zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    client = zk_client_factory()
    client.ensure_path(zk_root + "/p/child")
    client.ensure_path(zk_root + "/q")
    recursive = Recorder()
    persistent = Recorder()
    one_shot: queue.Queue[Any] = queue.Queue()
    add_watch(client, zk_root + "/p", recursive, PERSISTENT_RECURSIVE)
    add_watch(client, zk_root + "/q", persistent, PERSISTENT)
    # A one-shot watch on a node below (not on the watched path itself: see zkwatch's note on
    # ZOOKEEPER-4466) gets its event too, once.
    client.get(zk_root + "/p/child", watch=one_shot.put)
    client.set(zk_root + "/p/child", b"1")
    client.set(zk_root + "/p/child", b"2")
    client.create(zk_root + "/p/2")
    client.create(zk_root + "/q/1")
    client.create(zk_root + "/q/2")
    assert recursive.take(3) == [
        (EventType.CHANGED, zk_root + "/p/child"),
        (EventType.CHANGED, zk_root + "/p/child"),
        (EventType.CREATED, zk_root + "/p/2"),
    ]
    assert persistent.take(2) == [(EventType.CHILD, zk_root + "/q")] * 2
    assert one_shot.get(timeout=10).type == EventType.CHANGED
    # After removal nothing more arrives; the recursive watch proves later events were read.
    remove_watch(client, zk_root + "/q", persistent, PERSISTENT)
    client.create(zk_root + "/q/3")
    client.create(zk_root + "/p/4")
    assert recursive.next() == (EventType.CREATED, zk_root + "/p/4")
    persistent.assert_quiet()
    assert one_shot.empty()


def test_two_modes_on_one_path_are_refused(
    zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    client = zk_client_factory()
    add_watch(client, zk_root, lambda event: None, PERSISTENT_RECURSIVE)
    with pytest.raises(ValueError, match="ZOOKEEPER-4466"):
        add_watch(client, zk_root, lambda event: None, PERSISTENT)


def test_chrooted_client_gets_chroot_relative_paths(
    zk_server: ZooKeeperServers, zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    zk_client_factory().ensure_path(zk_root + "/c")
    client = zk_client_factory(hosts=zk_server.connect_string + zk_root)
    recorder = Recorder()
    add_watch(client, "/c", recorder, PERSISTENT_RECURSIVE)
    client.create("/c/x")
    assert recorder.next() == (EventType.CREATED, "/c/x")


def _watch_with_view(client: KazooClient, path: str) -> tuple[set[str], threading.Event, Any]:
    """A set of children kept by events + resyncs, like the board's view."""
    view: set[str] = set()
    resynced = threading.Event()
    lock = threading.Lock()

    def on_event(event: WatchedEvent) -> None:
        name = event.path[len(path) + 1 :]
        with lock:
            if event.type == EventType.CREATED:
                view.add(name)
            elif event.type == EventType.DELETED:
                view.discard(name)

    def on_resync() -> None:
        children = client.get_children(path)
        with lock:
            view.clear()
            view.update(children)
        resynced.set()

    watch = PersistentRecursiveWatch(client, path, on_event, on_resync)
    watch.start()
    assert resynced.wait(10)
    return view, resynced, watch


def _converges(view: set[str], expected: set[str], client: KazooClient, path: str) -> None:
    """Create a marker and wait for its event: every earlier change has been applied."""
    marker = Recorder()
    add_watch(client, path, marker, PERSISTENT_RECURSIVE)
    client.create(path + "/zz-marker")
    while marker.next() != (EventType.CREATED, path + "/zz-marker"):
        pass
    client.delete(path + "/zz-marker")
    while marker.next() != (EventType.DELETED, path + "/zz-marker"):
        pass
    remove_watch(client, path, marker, PERSISTENT_RECURSIVE)
    assert view == expected


def test_watch_is_re_added_and_view_resynced_after_a_dropped_connection(
    zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    client = zk_client_factory()
    writer = zk_client_factory()
    path = zk_root + "/r"
    client.ensure_path(path)
    view, resynced, watch = _watch_with_view(client, path)
    writer.create(path + "/before")
    resynced.clear()
    drop_connection(client)
    writer.create(path + "/while-reconnecting")
    assert resynced.wait(10), "no resync after reconnecting"
    writer.create(path + "/after")
    writer.delete(path + "/before")
    _converges(view, {"while-reconnecting", "after"}, client, path)
    watch.stop()


def test_watch_survives_session_expiry(
    zk_server: ZooKeeperServers, zk_client_factory: ZkClientFactory, zk_root: str
) -> None:
    client = zk_client_factory(timeout=4.0)
    writer = zk_client_factory()
    path = zk_root + "/e"
    client.ensure_path(path)
    view, resynced, watch = _watch_with_view(client, path)
    old_session = client.client_id[0]
    resynced.clear()
    expire_session(zk_server.connect_string, client)
    writer.create(path + "/during-expiry")
    assert resynced.wait(30), "no resync in the new session"
    assert client.client_id[0] != old_session
    writer.create(path + "/new-session")
    _converges(view, {"during-expiry", "new-session"}, client, path)
    watch.stop()


def test_watch_survives_a_server_restart(
    zk_isolated_server: ZooKeeperServers, zk_client_factory: ZkClientFactory
) -> None:
    hosts = zk_isolated_server.connect_string
    client = zk_client_factory(hosts=hosts, timeout=20.0)
    path = "/restart"
    client.ensure_path(path)
    view, resynced, watch = _watch_with_view(client, path)
    client.create(path + "/before")
    resynced.clear()
    zk_isolated_server.restart(0)
    assert resynced.wait(60), "no resync after the server restarted"
    writer = zk_client_factory(hosts=hosts)
    writer.create(path + "/after")
    _converges(view, {"before", "after"}, client, path)
    watch.stop()


def test_server_without_add_watch_is_a_clear_error(
    zk_client_factory: ZkClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = zk_client_factory()

    def refused(*args: Any) -> Any:
        result = client.handler.async_result()
        result.set_exception(UnimplementedError())  # what ZooKeeper < 3.6 answers to opcode 106
        return result

    monkeypatch.setattr(zkwatch, "add_watch_async", refused)
    with pytest.raises(ZooKeeperTooOld, match=r"3\.6\+ is required"):
        add_watch(client, "/", lambda event: None, PERSISTENT_RECURSIVE)
