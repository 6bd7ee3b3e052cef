//! The native command line: `cargo run --release -- bench` (more commands come with the
//! training loop). Native only; on wasm32 the page is the front end.
#![cfg_attr(target_arch = "wasm32", allow(unused))]

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use clap::{Parser, Subcommand};
    use webgan::gpu::{Gpu, Tiles};

    #[derive(Parser)]
    #[command(name = "webgan", about = "A DCGAN on WebGPU, natively through wgpu")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Time every op and pass at the seed's layer shapes and print GFLOP/s.
        Bench {
            #[arg(long, default_value_t = 64)]
            batch: usize,
            /// Timed repetitions per pass (after one warm-up).
            #[arg(long, default_value_t = 2)]
            reps: u32,
            /// Only layers whose name contains this text (e.g. "convT", "D conv").
            #[arg(long, default_value = "")]
            only: String,
            /// Register tiles "TMxTN/WG_MxWG_N" (default: chosen for the adapter); "all" compares the candidates.
            #[arg(long)]
            tiles: Option<String>,
        },
    }

    pub fn main() -> Result<(), Box<dyn std::error::Error>> {
        match Cli::parse().command {
            Command::Bench { batch, reps, only, tiles } => {
                let gpu = pollster::block_on(Gpu::new())?;
                let candidates = match tiles.as_deref() {
                    None => vec![gpu.tiles],
                    Some("all") => Tiles::CANDIDATES.to_vec(),
                    Some(s) => vec![s.parse::<Tiles>()?],
                };
                println!("adapter: {}", gpu.adapter_summary());
                for tiles in candidates {
                    println!("batch {batch}, tiles {tiles}, mean of {reps} after a warm-up");
                    pollster::block_on(webgan::bench::run(&gpu, batch, &tiles, reps, &only, &mut |row| {
                        println!("{row}")
                    }))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    cli::main()
}
