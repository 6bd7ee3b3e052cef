//! What the kernels are specialised with on one adapter: a register-tile shape per GEMM kernel
//! and the workgroup size of the per-channel reductions. `crate::autotune` measures it at
//! start-up and caches it per adapter; [`Tuning::for_adapter`] is the untimed default.

use super::Tiles;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuning {
    /// linear.wgsl: all three passes of a linear layer.
    pub linear: Tiles,
    /// conv_direct: conv2d forward, conv_transpose2d input gradient.
    pub direct: Tiles,
    /// conv_gather: conv2d input gradient, conv_transpose2d forward.
    pub gather: Tiles,
    /// conv_weight_grad: both layers' weight gradients.
    pub weight_grad: Tiles,
    /// Threads per workgroup of the one-workgroup-per-channel reductions (batchnorm statistics
    /// and backward sums, bias gradients). A CPU adapter runs a workgroup's threads as SIMD lanes
    /// of one core and pays for every barrier of the tree reduction by switching between groups
    /// of lanes: in Chromium on SwiftShader 16 threads instead of 256 made the mnist32 step's
    /// batchnorm passes 6x faster and its bias sums 17x.
    pub reduce_wg: u32,
}

impl Tuning {
    /// The same tiles for every GEMM kernel.
    pub fn uniform(tiles: Tiles, reduce_wg: u32) -> Tuning {
        Tuning { linear: tiles, direct: tiles, gather: tiles, weight_grad: tiles, reduce_wg }
    }

    /// The untimed default for the adapter's class.
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Tuning {
        Tuning::uniform(Tiles::for_adapter(info), Tuning::reduce_wg_for(info))
    }

    /// The tunings a benchmark's `--tiles` names: one shape for every kernel, a comma-separated
    /// list of them, `all` (see [`Tiles::parse_list`]), or one whole tuning in its cached form.
    pub fn parse_list(s: &str, reduce_wg: u32) -> Result<Vec<Tuning>, String> {
        if s.contains('=') {
            return Ok(vec![s.parse()?]);
        }
        Ok(Tiles::parse_list(s)?.into_iter().map(|t| Tuning::uniform(t, reduce_wg)).collect())
    }

    pub fn reduce_wg_for(info: &wgpu::AdapterInfo) -> u32 {
        match info.device_type {
            wgpu::DeviceType::Cpu => 16,
            _ => 256,
        }
    }

    /// The tile shapes `autotune` times on this adapter's class.
    pub fn candidates(info: &wgpu::AdapterInfo) -> Vec<Tiles> {
        let t = |tm, tn, wg_m, wg_n| Tiles { tm, tn, wg_m, wg_n };
        match info.device_type {
            // Large blocks per thread, few threads: the fastest shapes measured on lavapipe (8x16
            // per thread) and SwiftShader (16x16 per thread); 8x8 in 8x8 threads never won.
            // Compiling is most of an autotune's time on a CPU adapter: keep the list short.
            wgpu::DeviceType::Cpu => vec![t(8, 16, 8, 4), t(16, 16, 4, 4), t(16, 16, 2, 8)],
            _ => vec![t(4, 4, 8, 16), t(4, 4, 16, 16), t(8, 8, 8, 8), t(8, 4, 8, 16), t(4, 8, 16, 8)],
        }
    }
}

/// `linear=8x8/8x8 direct=... gather=... weight_grad=... reduce=16`: the form the cache keeps.
impl fmt::Display for Tuning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = |t: &Tiles| format!("{}x{}/{}x{}", t.tm, t.tn, t.wg_m, t.wg_n);
        write!(
            f,
            "linear={} direct={} gather={} weight_grad={} reduce={}",
            short(&self.linear),
            short(&self.direct),
            short(&self.gather),
            short(&self.weight_grad),
            self.reduce_wg
        )
    }
}

impl std::str::FromStr for Tuning {
    type Err = String;

    fn from_str(s: &str) -> Result<Tuning, String> {
        let mut fields = [None; 4];
        let mut reduce_wg = None;
        for word in s.split_whitespace() {
            let (key, value) = word.split_once('=').ok_or_else(|| format!("bad tuning field {word:?}"))?;
            let slot = match key {
                "linear" => 0,
                "direct" => 1,
                "gather" => 2,
                "weight_grad" => 3,
                "reduce" => {
                    let wg: u32 = value.parse().map_err(|_| format!("bad reduce workgroup {value:?}"))?;
                    if !(wg.is_power_of_two() && (1..=256).contains(&wg)) {
                        return Err(format!("reduce workgroup {wg} must be a power of two up to 256"));
                    }
                    reduce_wg = Some(wg);
                    continue;
                }
                _ => return Err(format!("unknown tuning field {key:?}")),
            };
            fields[slot] = Some(value.parse::<Tiles>()?);
        }
        match (fields, reduce_wg) {
            ([Some(linear), Some(direct), Some(gather), Some(weight_grad)], Some(reduce_wg)) => {
                Ok(Tuning { linear, direct, gather, weight_grad, reduce_wg })
            }
            _ => Err(format!("incomplete tuning {s:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_refuses_garbage() {
        let t = Tuning {
            linear: Tiles { tm: 8, tn: 16, wg_m: 8, wg_n: 4 },
            direct: Tiles { tm: 16, tn: 16, wg_m: 4, wg_n: 4 },
            gather: Tiles { tm: 16, tn: 16, wg_m: 2, wg_n: 8 },
            weight_grad: Tiles { tm: 8, tn: 8, wg_m: 8, wg_n: 8 },
            reduce_wg: 16,
        };
        assert_eq!(t.to_string().parse::<Tuning>(), Ok(t));
        for bad in [
            "",
            "linear=8x8/8x8",
            "linear=8x8/8x8 direct=8x8/8x8 gather=8x8/8x8 weight_grad=8x8/8x8 reduce=3",
            "linear=8x8/8x8 direct=8x8/8x8 gather=8x8/8x8 weight_grad=8x8/64x64 reduce=16",
            "nonsense",
        ] {
            assert!(bad.parse::<Tuning>().is_err(), "{bad:?} parsed");
        }
    }
}
