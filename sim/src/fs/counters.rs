//! What a SimFs counts: operations, bytes, crash outcomes, and every fault injected and fired.
//! Plain fields on the hot path; named only when a report asks for them.
//!
//! Reads are counted apart ([`ReadCounters`]): SQLite's page cache is shared by every connection
//! of the OS process (the bundled build enables memory management), so another world can evict
//! a world's cached pages and make it read them again. Read counts are not deterministic across
//! worlds running side by side; everything in [`Counters`] is.

use std::collections::BTreeMap;

macro_rules! counters {
    ($($field:ident => $name:literal),* $(,)?) => {
        /// Running totals of one SimFs.
        #[derive(Debug, Default, Clone, PartialEq, Eq)]
        pub(crate) struct Counters {
            $(pub(crate) $field: u64,)*
        }

        impl Counters {
            /// Every counter by its report name, in name order.
            pub(crate) fn to_map(&self) -> BTreeMap<String, u64> {
                BTreeMap::from([$(($name.to_string(), self.$field),)*])
            }
        }
    };
}

counters! {
    opens => "fs.opens",
    syncs => "fs.syncs",
    dir_syncs => "fs.dir_syncs",
    bytes_written => "fs.bytes_written",
    lock_busy => "fs.lock_busy",
    sleeps => "fs.sleeps",
    slept_us => "fs.slept_us",
    prng_reseeds => "fs.sqlite_prng_reseeds",
    violations => "fs.single_writer_violations",
    machine_crashes => "crash.machine",
    process_crashes => "crash.process",
    namespace_ops_lost => "crash.namespace_ops_lost",
    sectors_kept => "crash.sectors_kept",
    sectors_dropped => "crash.sectors_dropped",
    sectors_torn => "crash.sectors_torn",
    fsync_error_injected => "fault.fsync_error.injected",
    fsync_error_fired => "fault.fsync_error.fired",
    disk_full_injected => "fault.disk_full.injected",
    disk_full_fired => "fault.disk_full.fired",
    busy_injected => "fault.busy.injected",
    busy_fired => "fault.busy.fired",
    slow_disk_injected => "fault.slow_disk.injected",
    slow_disk_fired => "fault.slow_disk.fired",
    power_loss_injected => "fault.power_loss.injected",
    power_loss_fired => "fault.power_loss.fired",
}

/// Reads that reached SimFs; not deterministic when other worlds share the process.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ReadCounters {
    pub(crate) bytes_read: u64,
    pub(crate) stale_page_reads: u64,
}

impl ReadCounters {
    pub(crate) fn to_map(&self) -> BTreeMap<String, u64> {
        BTreeMap::from([
            ("fs.bytes_read".to_string(), self.bytes_read),
            ("fs.stale_page_reads".to_string(), self.stale_page_reads),
        ])
    }
}
