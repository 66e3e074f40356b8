//! SimFs's durability model, through its plain file API: what a machine crash keeps.
//!
//! The bugs these pin down are the ones a too-kind filesystem hides: a row "committed" without a
//! sync that survives every simulated crash, a file created and never synced that is still there
//! after power loss, a process crash that wrongly loses the page cache. Each test writes, maybe
//! syncs, crashes, and compares the image with what the model allows.

use clawsim_sim::{FsFault, MountProfile, Side, SimFs};
use proptest::prelude::*;
use std::path::Path;

const HOST: Side = Side::Host;

/// A power-loss disk with a durable `/data` directory.
fn disk(seed: u64) -> SimFs {
    let fs = SimFs::new(MountProfile::PowerLoss, seed);
    fs.create_dir_all(HOST, Path::new("/data")).unwrap();
    // Any sync makes pending directory entries durable; sync a scratch file for that.
    let scratch = Path::new("/.scratch");
    fs.write_file(HOST, scratch, b"").unwrap();
    fs.sync_file(HOST, scratch).unwrap();
    fs
}

fn sectors(fs: &SimFs) -> usize {
    fs.sector_size()
}

#[test]
fn synced_contents_survive_a_machine_crash_exactly() {
    for seed in 0..20 {
        let fs = disk(seed);
        let path = Path::new("/data/a");
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 256) as u8).collect();
        fs.write_file(HOST, path, &data).unwrap();
        fs.sync_file(HOST, path).unwrap();
        fs.crash_machine();
        assert_eq!(fs.read_file(HOST, path).unwrap(), data, "seed {seed}");
    }
}

#[test]
fn unsynced_sectors_are_each_kept_dropped_or_torn() {
    let (mut kept, mut dropped, mut torn) = (0, 0, 0);
    for seed in 0..30 {
        let fs = disk(seed);
        let path = Path::new("/data/a");
        let sector = sectors(&fs);
        fs.write_file(HOST, path, &vec![1u8; 16_384]).unwrap();
        fs.sync_file(HOST, path).unwrap();
        fs.write_file(HOST, path, &vec![2u8; 16_384]).unwrap();
        fs.crash_machine();
        let after = fs.read_file(HOST, path).unwrap();
        assert_eq!(after.len(), 16_384, "same length before and after");
        for chunk in after.chunks(sector) {
            if chunk.iter().all(|b| *b == 2) {
                kept += 1;
            } else if chunk.iter().all(|b| *b == 1) {
                dropped += 1;
            } else {
                assert_eq!(
                    chunk[0], 2,
                    "a torn sector starts with the new bytes (seed {seed})"
                );
                torn += 1;
            }
        }
    }
    assert!(
        kept > 0 && dropped > 0 && torn > 0,
        "{kept} {dropped} {torn}"
    );
}

#[test]
fn a_crash_image_equals_the_durable_image_taken_after_it() {
    let fs = disk(3);
    let path = Path::new("/data/a");
    fs.write_file(HOST, path, &[5u8; 9000]).unwrap();
    fs.sync_file(HOST, path).unwrap();
    fs.write_file(HOST, path, &[6u8; 5000]).unwrap();
    assert_eq!(fs.durable_image(path).unwrap(), vec![5u8; 9000]);
    fs.crash_machine();
    assert_eq!(
        fs.durable_image(path),
        fs.visible_image(HOST, path),
        "after a crash, what is visible is what is durable"
    );
}

#[test]
fn a_file_never_synced_may_vanish_and_a_synced_one_may_not() {
    let mut vanished = 0;
    for seed in 0..20 {
        let fs = disk(seed);
        fs.write_file(HOST, Path::new("/data/synced"), b"s")
            .unwrap();
        fs.sync_file(HOST, Path::new("/data/synced")).unwrap();
        fs.write_file(HOST, Path::new("/data/unsynced"), b"u")
            .unwrap();
        fs.crash_machine();
        assert!(fs.exists(HOST, Path::new("/data/synced")), "seed {seed}");
        if !fs.exists(HOST, Path::new("/data/unsynced")) {
            vanished += 1;
        }
    }
    assert!(
        vanished > 0,
        "an unsynced create never got lost in 20 crashes"
    );
}

#[test]
fn a_delete_becomes_durable_at_the_next_sync_of_any_file() {
    let fs = disk(1);
    let (gone, other) = (Path::new("/data/gone"), Path::new("/data/other"));
    fs.write_file(HOST, gone, b"g").unwrap();
    fs.sync_file(HOST, gone).unwrap();
    // The plain API has no unlink; a directory removal is a namespace change too.
    fs.create_dir_all(HOST, Path::new("/data/dir")).unwrap();
    fs.write_file(HOST, Path::new("/data/dir/f"), b"f").unwrap();
    fs.sync_file(HOST, Path::new("/data/dir/f")).unwrap();
    fs.remove_dir_all(HOST, Path::new("/data/dir")).unwrap();
    fs.write_file(HOST, other, b"o").unwrap();
    fs.sync_file(HOST, other).unwrap();
    fs.crash_machine();
    assert!(!fs.exists(HOST, Path::new("/data/dir")));
    assert!(fs.exists(HOST, gone));
}

#[test]
fn an_unsynced_removal_may_be_undone_by_a_crash() {
    let mut reappeared = 0;
    for seed in 0..20 {
        let fs = disk(seed);
        fs.create_dir_all(HOST, Path::new("/data/dir")).unwrap();
        fs.write_file(HOST, Path::new("/data/dir/f"), b"f").unwrap();
        fs.sync_file(HOST, Path::new("/data/dir/f")).unwrap();
        fs.remove_dir_all(HOST, Path::new("/data/dir")).unwrap();
        fs.crash_machine();
        if fs.exists(HOST, Path::new("/data/dir/f")) {
            assert_eq!(fs.read_file(HOST, Path::new("/data/dir/f")).unwrap(), b"f");
            reappeared += 1;
        }
    }
    assert!(reappeared > 0);
}

#[test]
fn a_process_crash_keeps_the_page_cache() {
    let fs = disk(2);
    let path = Path::new("/data/a");
    fs.write_file(Side::Container, path, b"unsynced but cached")
        .unwrap();
    fs.crash_process(Side::Container);
    fs.crash_process(HOST);
    assert_eq!(fs.read_file(HOST, path).unwrap(), b"unsynced but cached");
}

#[test]
fn an_fsync_error_fails_the_sync_and_logs_the_file_as_maybe_durable() {
    let fs = disk(4);
    let path = Path::new("/data/a");
    fs.write_file(HOST, path, b"x").unwrap();
    fs.inject(FsFault::FsyncError { side: HOST });
    assert!(fs.sync_file(HOST, path).is_err());
    fs.sync_file(HOST, path).unwrap();
    let log = fs.maybe_durable();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, path);
    assert_eq!(log[0].side, HOST);
    assert!(log[0].at_ms.is_some());
    let counters = fs.counters();
    assert_eq!(counters["fault.fsync_error.injected"], 1);
    assert_eq!(counters["fault.fsync_error.fired"], 1);
}

#[test]
fn disk_full_fails_growing_writes_for_the_given_number_of_ops() {
    let fs = disk(5);
    let path = Path::new("/data/a");
    fs.inject(FsFault::DiskFull {
        side: Side::Container,
        ops: 1,
    });
    fs.write_file(HOST, path, b"host is not affected").unwrap();
    let error = fs.write_file(Side::Container, path, b"grows").unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::StorageFull);
    fs.write_file(Side::Container, path, b"grows again")
        .unwrap();
    assert_eq!(fs.counters()["fault.disk_full.fired"], 1);
}

#[test]
fn a_slow_disk_accrues_latency_for_its_side_only() {
    let fs = disk(6);
    fs.inject(FsFault::SlowDisk {
        side: Side::Container,
        latency_ms: 40,
        ops: 2,
    });
    for _ in 0..3 {
        fs.write_file(Side::Container, Path::new("/data/a"), b"x")
            .unwrap();
    }
    fs.write_file(HOST, Path::new("/data/b"), b"x").unwrap();
    assert_eq!(fs.take_io_delay_ms(Side::Container), 80);
    assert_eq!(fs.take_io_delay_ms(Side::Container), 0);
    assert_eq!(fs.take_io_delay_ms(HOST), 0);
}

#[test]
fn a_power_cut_interrupts_the_operation_it_falls_on() {
    let fs = disk(7);
    fs.inject(FsFault::PowerLossAfter { ops: 2, side: None });
    fs.write_file(HOST, Path::new("/data/a"), b"first").unwrap();
    assert!(fs
        .write_file(HOST, Path::new("/data/b"), b"second")
        .is_err());
    assert!(!fs.exists(HOST, Path::new("/data/b")));
    assert_eq!(fs.counters()["crash.machine"], 1);
}

#[test]
fn a_power_cut_counted_on_one_side_waits_for_that_sides_operations() {
    let fs = disk(7);
    fs.inject(FsFault::PowerLossAfter {
        ops: 1,
        side: Some(Side::Container),
    });
    fs.write_file(HOST, Path::new("/data/a"), b"host").unwrap();
    fs.write_file(HOST, Path::new("/data/b"), b"host").unwrap();
    assert_eq!(fs.counters()["crash.machine"], 0);
    assert!(fs
        .write_file(Side::Container, Path::new("/data/c"), b"container")
        .is_err());
    assert_eq!(fs.counters()["crash.machine"], 1);
}

#[test]
fn directories_list_sorted_and_refuse_files_without_a_parent() {
    let fs = disk(8);
    for name in ["b", "a", "c"] {
        fs.write_file(HOST, &Path::new("/data").join(name), b"")
            .unwrap();
    }
    fs.create_dir_all(HOST, Path::new("/data/d/e")).unwrap();
    assert_eq!(
        fs.list_dir(HOST, Path::new("/data")).unwrap(),
        ["a", "b", "c", "d"]
    );
    let error = fs
        .write_file(HOST, Path::new("/missing/f"), b"")
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    fs.remove_dir_all(HOST, Path::new("/data/d")).unwrap();
    assert!(!fs.exists(HOST, Path::new("/data/d/e")));
    fs.remove_dir_all(HOST, Path::new("/data/d")).unwrap();
}

fn crash_image(seed: u64, writes: &[(u16, u8)]) -> (Vec<u8>, Vec<u8>, usize) {
    let fs = disk(seed);
    let path = Path::new("/data/f");
    let base: Vec<u8> = vec![0xAB; 12_288];
    fs.write_file(HOST, path, &base).unwrap();
    fs.sync_file(HOST, path).unwrap();
    let mut visible = base.clone();
    for (offset, byte) in writes {
        let offset = *offset as usize % visible.len();
        visible[offset] = *byte;
    }
    fs.write_file(HOST, path, &visible).unwrap();
    fs.crash_machine();
    (fs.read_file(HOST, path).unwrap(), visible, fs.sector_size())
}

proptest! {
    /// Every sector of a crash image is the synced one, the written one, or a torn mix that
    /// starts with the written bytes; and one seed always gives one image.
    #[test]
    fn crash_images_are_sector_wise_old_new_or_torn_and_deterministic(
        seed in any::<u64>(),
        writes in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..20),
    ) {
        let (image, visible, sector) = crash_image(seed, &writes);
        prop_assert_eq!(&crash_image(seed, &writes).0, &image);
        let old = vec![0xABu8; 12_288];
        prop_assert_eq!(image.len(), old.len());
        for start in (0..image.len()).step_by(sector) {
            let got = &image[start..start + sector];
            let (was, now) = (&old[start..start + sector], &visible[start..start + sector]);
            let torn_prefix = got.iter().zip(now).take_while(|(a, b)| a == b).count();
            prop_assert!(got == was || got == now || torn_prefix > 0,
                "sector at {start} is neither old, new nor torn");
        }
    }
}
