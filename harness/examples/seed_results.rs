//! Prints every seed's whole result (trace hash, verdict, coverage, landings) as one JSON line,
//! for seeds `0..N` of a workload on every profile: two builds' outputs compared with `cmp` show
//! whether a change kept each seed's run and judgement identical.
//!
//! `cargo run --release --example seed_results -- N swarm|bursts`

use clawsim::case::WorkloadKind;
use clawsim::seeds::run_seed;
use clawsim_sim::fs::MountProfile;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: u64 = args
        .get(1)
        .map_or(600, |n| n.parse().expect("a seed count"));
    let workload = match args.get(2).map_or("swarm", String::as_str) {
        "bursts" => WorkloadKind::Bursts,
        _ => WorkloadKind::Swarm,
    };
    for seed in 0..count {
        for profile in MountProfile::ALL {
            let result = run_seed(seed, profile, workload, false);
            println!("{}", serde_json::to_string(&result).expect("plain data"));
        }
    }
}
