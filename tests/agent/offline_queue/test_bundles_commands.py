from agent.offline_queue import Store


def test_current_and_refused_bundles(store: Store) -> None:
    assert store.bundles.current_bundle() is None and store.bundles.refused_bundle() is None
    store.bundles.save_bundle({"key_id": "k", "payload": "AA", "sig": "BB"}, 42)
    store.bundles.save_refused_bundle({"key_id": "x", "payload": "CC", "sig": "DD"},
                                      "bad_signature")
    assert store.bundles.current_bundle() == {"key_id": "k", "payload": "AA", "sig": "BB"}
    assert store.bundles.current_bundle_version() == 42
    refused = store.bundles.refused_bundle()
    assert refused is not None and refused["reason"] == "bad_signature"
    store.bundles.save_bundle({"key_id": "k", "payload": "EE", "sig": "FF"}, 43)
    store.bundles.clear_refused_bundle()
    assert store.bundles.current_bundle_version() == 43 and store.bundles.refused_bundle() is None


def test_a_command_is_answered_once(store: Store) -> None:
    assert store.commands.command_result("c-1") is None
    first = store.commands.save_command_result("c-1", {"id": "c-1", "ok": True, "detail": "pong"})
    again = store.commands.save_command_result("c-1", {"id": "c-1", "ok": False, "detail": "other"})
    assert again == first == store.commands.command_result("c-1")
