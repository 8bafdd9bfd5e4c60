"""The controller's watch-fed store: what a reconcile reads instead of the API server."""

from __future__ import annotations

from canary.kube.cache import Store
from canary.kube.port import Obj


def _obj(name: str, rv: str, ns: str = "shop", **extra: object) -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv}, **extra}


def _stored(store: Store, kind: str, name: str) -> Obj:
    obj = store.get(kind, "shop", name)
    assert obj is not None
    return obj


def test_reads_go_to_the_server_until_the_kind_was_listed_once() -> None:
    store = Store()
    store.apply("Canary", "MODIFIED", _obj("a", "5"))  # our own write, before the list
    assert not store.synced("Canary")
    store.replace("Canary", None, [_obj("a", "7")])
    assert store.synced("Canary")
    assert _stored(store, "Canary", "a")["metadata"]["resourceVersion"] == "7"


def test_an_older_watch_event_never_hides_our_own_newer_write() -> None:
    store = Store()
    store.replace("Canary", None, [_obj("a", "10")])
    store.apply("Canary", "MODIFIED", _obj("a", "12", status={"phase": "RolledBack"}))
    store.apply("Canary", "MODIFIED", _obj("a", "11", status={"phase": "Progressing"}))
    assert _stored(store, "Canary", "a")["status"] == {"phase": "RolledBack"}


def test_deleted_objects_go_and_a_relist_drops_what_vanished_in_its_namespace() -> None:
    store = Store()
    store.replace("Deployment", "shop", [_obj("a", "1"), _obj("b", "2")])
    store.replace("Deployment", "other", [_obj("c", "3", ns="other")])
    store.apply("Deployment", "DELETED", _obj("a", "4"))
    assert store.get("Deployment", "shop", "a") is None
    store.replace("Deployment", "shop", [])  # b was deleted while the watch was down
    assert store.items("Deployment", None) == [_obj("c", "3", ns="other")]


def test_readers_get_copies_and_managed_fields_are_not_kept() -> None:
    store = Store()
    obj = _obj("a", "1")
    obj["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    store.replace("Canary", None, [obj])
    got = _stored(store, "Canary", "a")
    assert "managedFields" not in got["metadata"]
    got["metadata"]["name"] = "changed"
    assert _stored(store, "Canary", "a")["metadata"]["name"] == "a"
