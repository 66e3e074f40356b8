//! Mount profiles: what each side sees of the other's writes, and whose clock stamps a file.
//!
//! Under virtiofs a container can read pages of `inbound.db` the host has already rewritten,
//! for as long as its cache entry is valid; and the heartbeat's mtime is the container's clock,
//! skew included. A bind mount shows neither. These tests drive a manual clock per side and
//! check both, so a profile that silently behaves like another one fails here.

use clawsim_sim::{MountProfile, Side, SimFs};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

const T0: i64 = 1_800_000_000_000;

/// A clock per side that the test moves by hand: `[host, container]` offsets from a shared now.
struct ManualClock {
    now_ms: Arc<AtomicI64>,
    container_offset_ms: Arc<AtomicI64>,
}

impl ManualClock {
    fn install(fs: &SimFs) -> ManualClock {
        let now_ms = Arc::new(AtomicI64::new(T0));
        let container_offset_ms = Arc::new(AtomicI64::new(0));
        let (now, offset) = (now_ms.clone(), container_offset_ms.clone());
        let sleep_now = now_ms.clone();
        fs.set_time_hooks(
            Arc::new(move |side| {
                let skew = match side {
                    Side::Host => 0,
                    Side::Container => offset.load(Ordering::SeqCst),
                };
                now.load(Ordering::SeqCst) + skew
            }),
            Arc::new(move |_, us| {
                sleep_now.fetch_add(us / 1000, Ordering::SeqCst);
            }),
        );
        ManualClock {
            now_ms,
            container_offset_ms,
        }
    }

    fn advance_ms(&self, ms: i64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

fn session_disk(profile: MountProfile, seed: u64) -> (SimFs, ManualClock) {
    let fs = SimFs::new(profile, seed);
    let clock = ManualClock::install(&fs);
    fs.set_stale_ms_max(5_000);
    fs.create_dir_all(Side::Host, Path::new("/s")).unwrap();
    (fs, clock)
}

/// Host writes v1, container reads it (caching it), host writes v2; returns what the
/// container reads `after_ms` later.
fn container_read_after_rewrite(profile: MountProfile, seed: u64, after_ms: i64) -> Vec<u8> {
    let (fs, clock) = session_disk(profile, seed);
    let path = Path::new("/s/inbound.db");
    fs.write_file(Side::Host, path, &[1u8; 8192]).unwrap();
    assert_eq!(
        fs.read_file(Side::Container, path).unwrap(),
        vec![1u8; 8192]
    );
    fs.write_file(Side::Host, path, &[2u8; 8192]).unwrap();
    clock.advance_ms(after_ms);
    fs.read_file(Side::Container, path).unwrap()
}

#[test]
fn under_virtiofs_the_container_may_read_pages_the_host_already_rewrote() {
    let stale_seeds = (0..20)
        .filter(|seed| {
            container_read_after_rewrite(MountProfile::Virtiofs, *seed, 0) == vec![1u8; 8192]
        })
        .count();
    assert!(stale_seeds > 0, "no seed served a stale page");
}

#[test]
fn under_virtiofs_staleness_ends_after_stale_ms_max() {
    for seed in 0..20 {
        let read = container_read_after_rewrite(MountProfile::Virtiofs, seed, 5_001);
        assert_eq!(read, vec![2u8; 8192], "seed {seed}");
    }
}

#[test]
fn under_bind_every_read_is_fresh() {
    for seed in 0..20 {
        let read = container_read_after_rewrite(MountProfile::Bind, seed, 0);
        assert_eq!(read, vec![2u8; 8192], "seed {seed}");
    }
}

#[test]
fn under_virtiofs_a_side_sees_its_own_writes_at_once() {
    for seed in 0..20 {
        let (fs, _clock) = session_disk(MountProfile::Virtiofs, seed);
        let path = Path::new("/s/outbound.db");
        fs.write_file(Side::Container, path, b"one").unwrap();
        assert_eq!(fs.read_file(Side::Container, path).unwrap(), b"one");
        fs.write_file(Side::Container, path, b"two").unwrap();
        assert_eq!(fs.read_file(Side::Container, path).unwrap(), b"two");
    }
}

#[test]
fn visible_image_shows_what_a_side_would_read_without_refreshing_it() {
    let (fs, _clock) = session_disk(MountProfile::Virtiofs, 0);
    fs.set_stale_ms_max(1_000_000);
    let path = Path::new("/s/inbound.db");
    fs.write_file(Side::Host, path, b"old!").unwrap();
    fs.read_file(Side::Container, path).unwrap();
    fs.write_file(Side::Host, path, b"new!").unwrap();
    let seen = fs.visible_image(Side::Container, path).unwrap();
    assert_eq!(fs.read_file(Side::Container, path).unwrap(), seen);
    assert_eq!(fs.visible_image(Side::Host, path).unwrap(), b"new!");
}

fn heartbeat_mtime(profile: MountProfile) -> i64 {
    let (fs, clock) = session_disk(profile, 1);
    clock.container_offset_ms.store(-90_000, Ordering::SeqCst);
    let heartbeat = Path::new("/s/.heartbeat");
    fs.touch(Side::Container, heartbeat).unwrap();
    fs.mtime_ms(Side::Host, heartbeat).unwrap().unwrap()
}

#[test]
fn under_virtiofs_mtimes_come_from_the_writers_clock() {
    assert_eq!(heartbeat_mtime(MountProfile::Virtiofs), T0 - 90_000);
}

#[test]
fn under_bind_mtimes_come_from_the_one_kernel_clock() {
    assert_eq!(heartbeat_mtime(MountProfile::Bind), T0);
    assert_eq!(heartbeat_mtime(MountProfile::PowerLoss), T0);
}

#[test]
fn profiles_parse_from_their_names() {
    for profile in MountProfile::ALL {
        assert_eq!(profile.name().parse::<MountProfile>(), Ok(profile));
    }
    assert!("nfs".parse::<MountProfile>().is_err());
}
