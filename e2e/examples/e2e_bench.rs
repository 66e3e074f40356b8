//! Measures and prints clawsim's real-Docker figures (see `clawsim_e2e::bench`).
//! `cargo run --release -p clawsim-e2e --example e2e_bench`; `CLAWSIM_E2E_BENCH_SAMPLES=<n>`.

fn main() {
    let samples = std::env::var("CLAWSIM_E2E_BENCH_SAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    if let Err(reason) = clawsim_e2e::engine::probe() {
        eprintln!("e2e bench: skipped: no Docker engine ({reason})");
        return;
    }
    match clawsim_e2e::bench::run(samples) {
        Ok(figures) => print!("{}", clawsim_e2e::bench::render(&figures)),
        Err(error) => {
            eprintln!("e2e bench failed: {error}");
            std::process::exit(1);
        }
    }
}
