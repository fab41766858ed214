from agent.offline_queue import Store


def test_current_and_refused_bundles(store: Store) -> None:
    assert store.current_bundle() is None and store.refused_bundle() is None
    store.save_bundle({"key_id": "k", "payload": "AA", "sig": "BB"}, 42)
    store.save_refused_bundle({"key_id": "x", "payload": "CC", "sig": "DD"}, "bad_signature")
    assert store.current_bundle() == {"key_id": "k", "payload": "AA", "sig": "BB"}
    assert store.current_bundle_version() == 42
    refused = store.refused_bundle()
    assert refused is not None and refused["reason"] == "bad_signature"
    store.save_bundle({"key_id": "k", "payload": "EE", "sig": "FF"}, 43)
    store.clear_refused_bundle()
    assert store.current_bundle_version() == 43 and store.refused_bundle() is None


def test_a_command_is_answered_once(store: Store) -> None:
    assert store.command_result("c-1") is None
    first = store.save_command_result("c-1", {"id": "c-1", "ok": True, "detail": "pong"})
    again = store.save_command_result("c-1", {"id": "c-1", "ok": False, "detail": "other"})
    assert again == first == store.command_result("c-1")
