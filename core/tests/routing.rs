//! Routing (PROTOCOL §7): an inbound event finds its messaging group, the highest-priority wired
//! agent group and the session (shared: one per messaging group; per-thread: one per thread),
//! creating a missing session with its whole folder, and lands in `inbound.db` as a pending
//! message with an even seq, its content stored exactly as given.
//!
//! The stories behind these: a session folder whose creation a crash cut short must be finished
//! by the next message, not stay broken; an event for a platform nobody configured must fail
//! loudly and write nothing; and a channel that sends text that is not JSON must not lose it.

mod host_support;

use clawsim_core::db::{Access, Db, Schema};
use clawsim_core::host::SessionMode;
use clawsim_core::runtime::ContainerState;
use host_support::*;

#[test]
fn shared_mode_puts_every_thread_in_one_session_with_even_seqs() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let first = host.route(&chat("hello", Some("t1"))).unwrap();
    let second = host.route(&chat("again", Some("t2"))).unwrap();
    assert_eq!(first.session_id, second.session_id);
    assert_eq!((first.seq, second.seq), (2, 4));
    let session = host.session(&first.session_id).unwrap();
    let rows = inbound_rows(&world.env, &session.paths);
    insta::assert_yaml_snapshot!("shared_session_rows", rows);
}

#[test]
fn per_thread_mode_gives_each_thread_its_own_session() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::PerThread);
    let a1 = host.route(&chat("a", Some("thread-a"))).unwrap();
    let b = host.route(&chat("b", Some("thread-b"))).unwrap();
    let a2 = host.route(&chat("a again", Some("thread-a"))).unwrap();
    assert_ne!(a1.session_id, b.session_id);
    assert_eq!(a1.session_id, a2.session_id);
    assert_eq!(
        a2.seq, 4,
        "the second message of thread-a follows the first"
    );
    assert_eq!(b.seq, 2, "thread-b's session numbers from the start");
    let ids: Vec<String> = host
        .active_sessions()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "active sessions come sorted by id");
    assert_eq!(ids.len(), 2);
}

#[test]
fn highest_priority_agent_group_takes_the_message() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    host.add_agent_group("ag-urgent", "Urgent").unwrap();
    host.wire("mg-chat", "ag-urgent", 10, SessionMode::Shared)
        .unwrap();
    let routed = host.route(&chat("who answers?", None)).unwrap();
    assert_eq!(
        host.session(&routed.session_id).unwrap().agent_group_id,
        "ag-urgent"
    );

    host.wire("mg-chat", "ag-main", 20, SessionMode::Shared)
        .unwrap();
    let rerouted = host.route(&chat("and now?", None)).unwrap();
    assert_eq!(
        host.session(&rerouted.session_id).unwrap().agent_group_id,
        "ag-main"
    );
}

#[test]
fn unknown_messaging_group_is_an_error_naming_it_and_writes_nothing() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let mut event = chat("lost?", None);
    event.platform_id = "room-9".into();
    let error = host.route(&event).unwrap_err().to_string();
    assert!(
        error.contains("room-9") && error.contains("chat"),
        "{error}"
    );
    assert!(host.active_sessions().unwrap().is_empty());
    assert!(!world.config.data_dir.join("sessions").exists());
    assert!(world.runtime.starts().is_empty());
}

#[test]
fn messaging_group_without_wiring_is_an_error_naming_it() {
    let world = World::new();
    let mut host = world.open();
    host.add_messaging_group("mg-lonely", "chat", "room-1")
        .unwrap();
    let error = host.route(&chat("anyone?", None)).unwrap_err().to_string();
    assert!(error.contains("mg-lonely"), "{error}");
    assert!(host.active_sessions().unwrap().is_empty());
}

#[test]
fn new_session_gets_both_dbs_outbox_and_a_woken_container() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let routed = host.route(&chat("hi", None)).unwrap();
    let session = host.session(&routed.session_id).unwrap();
    assert!(session.paths.inbound_db().exists());
    assert!(session.paths.outbox().is_dir());
    let outbound = Db::open(
        &*world.env,
        &session.paths.outbound_db(),
        Schema::Outbound,
        Access::ReadOnly,
    )
    .unwrap();
    let count: i64 = outbound
        .conn()
        .query_row("SELECT COUNT(*) FROM messages_out", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0, "outbound.db exists with its schema, empty");
    assert_eq!(world.runtime.starts(), vec![routed.session_id.clone()]);
    assert_eq!(
        host.container_state(&routed.session_id),
        ContainerState::Running
    );
    assert_eq!(
        host.session(&routed.session_id).unwrap().container_status,
        "running"
    );
}

#[test]
fn session_folder_cut_short_by_a_crash_is_finished_by_the_next_route() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let first = host.route(&chat("one", None)).unwrap();
    let paths = host.session(&first.session_id).unwrap().paths;
    // The crash: outbound.db created but empty (its schema never committed), outbox/ missing.
    std::fs::remove_dir_all(paths.outbox()).unwrap();
    std::fs::write(paths.outbound_db(), b"").unwrap();
    drop(host);

    let mut host = world.open();
    let second = host.route(&chat("two", None)).unwrap();
    assert_eq!(
        second.session_id, first.session_id,
        "the central row is reused"
    );
    assert!(paths.outbox().is_dir());
    let outbound = Db::open(
        &*world.env,
        &paths.outbound_db(),
        Schema::Outbound,
        Access::ReadOnly,
    )
    .unwrap();
    let version: i64 = outbound
        .conn()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, Schema::Outbound.current_version());
    let texts: Vec<String> = inbound_rows(&world.env, &paths)
        .iter()
        .map(|r| r.content_json()["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["one", "two"]);
}

#[test]
fn session_folder_removed_entirely_is_recreated() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let first = host.route(&chat("one", None)).unwrap();
    let paths = host.session(&first.session_id).unwrap().paths;
    std::fs::remove_dir_all(&paths.root).unwrap();
    let second = host.route(&chat("two", None)).unwrap();
    assert_eq!(second.session_id, first.session_id);
    assert!(paths.outbound_db().exists() && paths.outbox().is_dir());
    assert_eq!(second.seq, 2, "a fresh inbound.db numbers from the start");
}

#[test]
fn content_that_is_not_json_is_stored_as_given() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let mut event = chat("", None);
    event.content = "just <text>, not {json".into();
    let routed = host.route(&event).unwrap();
    let paths = host.session(&routed.session_id).unwrap().paths;
    let row = inbound_row(&world.env, &paths, &routed.message_id);
    assert_eq!(row.content, "just <text>, not {json");
    assert_eq!(row.status, "pending");
    assert_eq!(row.route, room_route());
}

#[test]
fn ten_megabytes_of_content_route_whole() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let mut event = chat("", None);
    event.content = "x".repeat(10 * 1024 * 1024);
    let routed = host.route(&event).unwrap();
    let paths = host.session(&routed.session_id).unwrap().paths;
    assert_eq!(
        inbound_row(&world.env, &paths, &routed.message_id)
            .content
            .len(),
        10 * 1024 * 1024
    );
}

#[test]
fn unknown_kind_is_stored_not_refused() {
    let world = World::new();
    let mut host = world.open_wired(SessionMode::Shared);
    let mut event = chat("?", None);
    event.kind = "carrier-pigeon".into();
    let routed = host.route(&event).unwrap();
    let paths = host.session(&routed.session_id).unwrap().paths;
    assert_eq!(
        inbound_row(&world.env, &paths, &routed.message_id).kind,
        "carrier-pigeon"
    );
}
