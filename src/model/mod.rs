//! Models: DCGAN and its fully connected baseline BasicGAN, as layer specifications
//! ([`spec`]) that run on the GPU ([`network`]) or on the CPU reference ([`cpu`]).

pub mod checkpoint;
pub mod classifier;
pub mod config;
pub mod cpu;
pub mod generate;
pub mod latent;
pub mod limits;
pub mod network;
pub mod spec;
pub mod walk;
pub mod weights;

pub use config::{KernelForm, Kind, ModelConfig};
pub use network::Network;
pub use spec::{discriminator, generator, LayerSpec, NetSpec};
