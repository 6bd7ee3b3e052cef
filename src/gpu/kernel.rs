//! Kernels: a shader family (one WGSL file, one binding block, several entry points) and the
//! compute pipelines built from it, specialised by tile constants and cached for the device.

use super::Gpu;
use std::sync::Arc;

/// How a binding of a shader family's block is declared in WGSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Uniform,
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
}

/// One WGSL file: its source and its binding block (group 0, bindings 0..n in order), which every
/// entry point of the file shares, so one bind-group layout serves them all.
pub struct Family {
    pub name: &'static str,
    pub source: &'static str,
    pub bindings: &'static [Binding],
}

/// Register-tile shape of the GEMM kernels: a workgroup of `wg_m x wg_n` threads, each holding a
/// `tm x tn` block of outputs in registers, computes a `(tm*wg_m) x (tn*wg_n)` output tile.
/// CPU adapters (lavapipe, SwiftShader) run a workgroup's threads as SIMD lanes of one core and
/// want large per-thread tiles without workgroup memory; discrete GPUs want more threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tiles {
    pub tm: u32,
    pub tn: u32,
    pub wg_m: u32,
    pub wg_n: u32,
}

impl Tiles {
    /// The shapes the benchmark compares (and the shader tests validate).
    pub const CANDIDATES: [Tiles; 16] = [
        Tiles { tm: 4, tn: 4, wg_m: 4, wg_n: 16 },
        Tiles { tm: 4, tn: 4, wg_m: 8, wg_n: 16 },
        Tiles { tm: 4, tn: 4, wg_m: 16, wg_n: 16 },
        Tiles { tm: 8, tn: 4, wg_m: 4, wg_n: 16 },
        Tiles { tm: 4, tn: 8, wg_m: 4, wg_n: 16 },
        Tiles { tm: 8, tn: 8, wg_m: 2, wg_n: 32 },
        Tiles { tm: 8, tn: 8, wg_m: 8, wg_n: 8 },
        Tiles { tm: 2, tn: 2, wg_m: 8, wg_n: 32 },
        // Large per-thread blocks in small workgroups, for CPU adapters.
        Tiles { tm: 8, tn: 8, wg_m: 4, wg_n: 8 },
        Tiles { tm: 16, tn: 8, wg_m: 4, wg_n: 8 },
        Tiles { tm: 8, tn: 16, wg_m: 8, wg_n: 4 },
        Tiles { tm: 16, tn: 16, wg_m: 4, wg_n: 4 },
        Tiles { tm: 16, tn: 16, wg_m: 2, wg_n: 8 },
        Tiles { tm: 32, tn: 8, wg_m: 2, wg_n: 8 },
        // What `fit` picks for few rows or few columns.
        Tiles { tm: 1, tn: 8, wg_m: 1, wg_n: 64 },
        Tiles { tm: 8, tn: 1, wg_m: 64, wg_n: 1 },
    ];

    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Tiles {
        match info.device_type {
            // Measured on lavapipe (see README): 8x8 per thread was 2x faster than 4x4.
            wgpu::DeviceType::Cpu => Tiles { tm: 8, tn: 8, wg_m: 8, wg_n: 8 },
            _ => Tiles { tm: 4, tn: 4, wg_m: 8, wg_n: 16 },
        }
    }
    /// The shape for a GEMM of `rows` x `cols` outputs: this one, or a variant with the same
    /// threads per workgroup and no larger per-thread block when this one would spend much of its
    /// work on padding: G's last layer has 1 or 3 output channels, D's first 1 or 3 input
    /// channels (its weight gradient is 32 x 16 for MNIST), D's last linear one output.
    /// Score: padded outputs per useful output, times loads per multiply-add of a thread's block
    /// ((tm + tn) / (tm * tn)); the lowest wins, ties going to `self`.
    pub fn fit(&self, rows: usize, cols: usize) -> Tiles {
        let threads = self.wg_m * self.wg_n;
        let score = |t: &Tiles| {
            let (tm, tn) = (t.tile_m() as usize, t.tile_n() as usize);
            let padded = (rows.div_ceil(tm) * tm * cols.div_ceil(tn) * tn) as f64 / (rows * cols) as f64;
            padded * (t.tm + t.tn) as f64 / (t.tm * t.tn) as f64
        };
        let halvings = |n: u32| std::iter::successors(Some(n), |&v| (v > 1).then_some(v / 2));
        let mut best = *self;
        for tm in halvings(self.tm) {
            for tn in halvings(self.tn) {
                for wg_m in (1..=threads).filter(|&d| threads.is_multiple_of(d)) {
                    let t = Tiles { tm, tn, wg_m, wg_n: threads / wg_m };
                    if score(&t) < score(&best) {
                        best = t;
                    }
                }
            }
        }
        best
    }

    pub fn tile_m(&self) -> u32 {
        self.tm * self.wg_m
    }
    pub fn tile_n(&self) -> u32 {
        self.tn * self.wg_n
    }
    /// `"all"` (the candidates) or a comma-separated list of `TMxTN/WG_MxWG_N`.
    pub fn parse_list(s: &str) -> Result<Vec<Tiles>, String> {
        match s.trim() {
            "all" => Ok(Tiles::CANDIDATES.to_vec()),
            s => s.split(',').map(str::parse).collect(),
        }
    }

    /// The WGSL `const` declarations these tiles override.
    pub fn consts(&self) -> [(&'static str, u32); 4] {
        [("TM", self.tm), ("TN", self.tn), ("WG_M", self.wg_m), ("WG_N", self.wg_n)]
    }
}

/// Parses `"TMxTN/WG_MxWG_N"` (e.g. `"4x4/4x16"`), the form the CLI's and the page's
/// benchmark take; every number must be positive and a workgroup at most 256 threads.
impl std::str::FromStr for Tiles {
    type Err = String;

    fn from_str(s: &str) -> Result<Tiles, String> {
        let nums: Vec<u32> = s
            .split(['x', '/'])
            .map(|n| n.trim().parse().map_err(|_| format!("bad tiles {s:?}: want TMxTN/WG_MxWG_N")))
            .collect::<Result<_, _>>()?;
        match nums[..] {
            [tm, tn, wg_m, wg_n] if nums.iter().all(|&n| n > 0) && wg_m.checked_mul(wg_n).is_some_and(|t| t <= 256) => {
                Ok(Tiles { tm, tn, wg_m, wg_n })
            }
            _ => Err(format!("bad tiles {s:?}: want TMxTN/WG_MxWG_N, all positive, with WG_M*WG_N <= 256")),
        }
    }
}

impl std::fmt::Display for Tiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{} per thread, {}x{} threads", self.tm, self.tn, self.wg_m, self.wg_n)
    }
}

/// The part of a WGSL source that one entry point needs: every declaration that is not a
/// function (structs, bindings, constants), the entry point, and the functions it reaches by
/// calls; the other entry points and their helpers are left out.
///
/// Why: a pipeline compiles one entry point, but naga (natively) and Tint (in the browser) parse
/// and validate the whole module first, and after [`specialize`] unrolls every marked loop of
/// every entry point the whole of conv.wgsl is many times the size of one kernel: on lavapipe
/// most of a cold conv test's time went to naga parsing kernels it did not use.
///
/// Relies on the shaders' layout (checked by tests/shaders.rs for every entry point): a
/// function starts with `fn ` at the start of a line, an entry point's on the line after its
/// `@compute` attributes, and ends at the next line that is exactly `}`.
pub fn entry_module(source: &str, entry: &str) -> String {
    // Top-level items as (function name or None, its lines).
    let mut items: Vec<(Option<&str>, Vec<&str>)> = Vec::new();
    let mut lines = source.lines();
    let mut pending: Vec<&str> = Vec::new(); // an entry point's attribute line, before its `fn`
    while let Some(line) = lines.next() {
        if line.starts_with("@compute") {
            pending.push(line);
            continue;
        }
        let Some(name) = line.strip_prefix("fn ").and_then(|r| r.split('(').next()) else {
            items.push((None, std::mem::take(&mut pending)));
            items.push((None, vec![line]));
            continue;
        };
        let mut body = std::mem::take(&mut pending);
        body.push(line);
        for l in lines.by_ref() {
            body.push(l);
            if l == "}" {
                break;
            }
        }
        items.push((Some(name.trim()), body));
    }
    items.push((None, pending));
    let names: Vec<&str> = items.iter().filter_map(|(n, _)| *n).collect();
    assert!(names.contains(&entry), "the shader has no entry point `{entry}`");
    // Functions reachable from the entry point by name.
    let mut keep = vec![entry];
    let mut i = 0;
    while i < keep.len() {
        let body = &items.iter().find(|(n, _)| *n == Some(keep[i])).unwrap().1;
        for word in body.iter().flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))) {
            if names.contains(&word) && !keep.contains(&word) {
                keep.push(word);
            }
        }
        i += 1;
    }
    let mut out = String::with_capacity(source.len());
    for (name, body) in &items {
        if name.is_none_or(|n| keep.contains(&n)) {
            body.iter().for_each(|l| {
                out.push_str(l);
                out.push('\n');
            });
        }
    }
    out
}

/// Specialises a WGSL source for one tile shape: rewrites its `const NAME: u32 = ...;`
/// declarations, then fully unrolls every loop marked `// unroll` over those constants.
///
/// Why: register tiles must stay in registers. A private array indexed by a loop variable makes
/// the compiler keep it in memory, and on CPU adapters (which run invocations as SIMD lanes)
/// every such access becomes a gather or scatter: measured 2x slower on lavapipe. Unrolled,
/// every index is a constant and the arrays become plain registers. The file as written stays
/// valid WGSL with its default constants, so naga checks it as is.
pub fn specialize(source: &str, consts: &[(&str, u32)]) -> String {
    let mut lines = Vec::new();
    let mut found = vec![false; consts.len()];
    for line in source.lines() {
        let hit = consts.iter().position(|(name, _)| {
            line.strip_prefix("const ")
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|rest| rest.starts_with(':'))
        });
        match hit {
            Some(i) => {
                found[i] = true;
                lines.push(format!("const {}: u32 = {}u;", consts[i].0, consts[i].1));
            }
            None => lines.push(line.to_string()),
        }
    }
    if let Some(i) = found.iter().position(|f| !f) {
        panic!("shader has no `const {}: u32` to specialise", consts[i].0);
    }
    // Every `const NAME: u32 = <n>u;` of the result, for the loop bounds.
    let values: Vec<(String, u32)> = lines
        .iter()
        .filter_map(|l| {
            let (name, value) = l.strip_prefix("const ")?.split_once(": u32 = ")?;
            Some((name.to_string(), value.strip_suffix("u;")?.parse().ok()?))
        })
        .collect();
    let mut out = String::with_capacity(source.len() * 2);
    unroll(&lines, &values, &mut out);
    out
}

/// `for (var i = 0u; i < BOUND; i++) { // unroll` -> (i, BOUND's value).
fn unroll_header(line: &str, values: &[(String, u32)]) -> Option<(String, u32)> {
    let rest = line.trim().strip_suffix("// unroll")?.trim().strip_prefix("for (var ")?;
    let (var, rest) = rest.split_once(" = 0u; ")?;
    let bound = rest.strip_prefix(var)?.strip_prefix(" < ")?.split_once(';')?.0;
    let n =
        values.iter().find(|(name, _)| name == bound).map(|v| v.1).or_else(|| bound.trim_end_matches('u').parse().ok());
    Some((var.to_string(), n.unwrap_or_else(|| panic!("unroll bound {bound} is not a constant"))))
}

fn unroll(lines: &[String], values: &[(String, u32)], out: &mut String) {
    let depth = |l: &str| l.matches('{').count() as i32 - l.matches('}').count() as i32;
    let mut i = 0;
    while i < lines.len() {
        let Some((var, n)) = unroll_header(&lines[i], values) else {
            out.push_str(&lines[i]);
            out.push('\n');
            i += 1;
            continue;
        };
        // The body runs to the brace that closes the header's.
        let (mut open, mut end) = (depth(&lines[i]), i + 1);
        while open > 0 {
            open += depth(&lines[end]);
            end += 1;
        }
        let body = &lines[i + 1..end - 1];
        for v in 0..n {
            // Each copy is its own block, so the body's `let`s do not collide.
            out.push_str("{\n");
            let copy: Vec<String> = body.iter().map(|l| replace_ident(l, &var, &format!("{v}u"))).collect();
            unroll(&copy, values, out);
            out.push_str("}\n");
        }
        i = end;
    }
}

/// Replaces whole-word occurrences of the identifier `name` in `line`.
fn replace_ident(line: &str, name: &str, with: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut word = String::new();
    for c in line.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        out.push_str(if word == name { with } else { &word });
        word.clear();
        out.push(c);
    }
    out.pop();
    out
}

impl Gpu {
    /// The compute pipeline for `entry` of `family` with `consts` substituted; built once.
    pub fn kernel(&self, family: &Family, entry: &str, consts: &[(&str, u32)]) -> wgpu::ComputePipeline {
        let key = format!("{}::{entry}{consts:?}", family.name);
        if let Some(p) = self.kernels.lock().unwrap().get(&key) {
            return p.clone();
        }
        let layout = self.layouts(family).1;
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&key),
            source: wgpu::ShaderSource::Wgsl(specialize(&entry_module(family.source, entry), consts).into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&key),
            layout: Some(&layout),
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        self.kernels.lock().unwrap().insert(key, pipeline.clone());
        pipeline
    }

    /// A dispatch of [`Gpu::kernel`]`(family, entry, consts)` over `bind_group` and `grid`.
    pub fn dispatch(
        &self,
        family: &Family,
        entry: &str,
        consts: &[(&str, u32)],
        bind_group: wgpu::BindGroup,
        grid: [u32; 3],
    ) -> Dispatch {
        Dispatch { pipeline: self.kernel(family, entry, consts), bind_group, grid, entry: entry.into() }
    }

    fn layouts(&self, family: &Family) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
        let mut layouts = self.layouts.lock().unwrap();
        layouts
            .entry(family.name)
            .or_insert_with(|| {
                let entries: Vec<_> = family
                    .bindings
                    .iter()
                    .enumerate()
                    .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                        binding: i as u32,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: match b {
                            Binding::Uniform => wgpu::BindingType::Buffer {
                                ty: wgpu::BufferBindingType::Uniform,
                                has_dynamic_offset: false,
                                min_binding_size: None,
                            },
                            Binding::Read | Binding::ReadWrite => wgpu::BindingType::Buffer {
                                ty: wgpu::BufferBindingType::Storage { read_only: *b == Binding::Read },
                                has_dynamic_offset: false,
                                min_binding_size: None,
                            },
                        },
                        count: None,
                    })
                    .collect();
                let group = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(family.name),
                    entries: &entries,
                });
                let pipeline = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(family.name),
                    bind_group_layouts: &[Some(&group)],
                    immediate_size: 0,
                });
                (group, pipeline)
            })
            .clone()
    }

    /// A bind group for `family`'s block; `resources[i]` goes to binding i.
    pub fn bind_group(&self, family: &Family, label: &str, resources: &[wgpu::BindingResource<'_>]) -> wgpu::BindGroup {
        assert_eq!(resources.len(), family.bindings.len(), "{label}: wrong number of bindings");
        let layout = self.layouts(family).0;
        let entries: Vec<_> = resources
            .iter()
            .enumerate()
            .map(|(i, r)| wgpu::BindGroupEntry { binding: i as u32, resource: r.clone() })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &layout,
            entries: &entries,
        })
    }
}

/// One recorded dispatch: a pipeline, its bind group and a grid, built once and encoded each step.
#[derive(Clone)]
pub struct Dispatch {
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    pub grid: [u32; 3],
    /// The entry point, for the benchmark's per-dispatch rows.
    pub entry: Arc<str>,
}

impl Dispatch {
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.grid[0], self.grid[1], self.grid[2]);
    }
}

/// What a dispatch does, for a step's per-op profile: the op and pass, and its FLOPs (0 for the
/// passes that are not matrix products).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpLabel {
    pub op: &'static str,
    pub flops: f64,
}

impl OpLabel {
    pub const fn new(op: &'static str) -> OpLabel {
        OpLabel { op, flops: 0.0 }
    }
    pub const fn matmul(op: &'static str, flops: f64) -> OpLabel {
        OpLabel { op, flops }
    }
}

/// Where the layers put their dispatches: a compute pass encodes them; a [`Listing`] keeps them
/// with their labels, to count or to time op by op.
pub trait Sink {
    fn push(&mut self, label: OpLabel, dispatch: &Dispatch);
}

impl Sink for wgpu::ComputePass<'_> {
    fn push(&mut self, _: OpLabel, dispatch: &Dispatch) {
        dispatch.encode(self);
    }
}

/// The dispatches of a step, in order, with their labels.
#[derive(Default)]
pub struct Listing(pub Vec<(OpLabel, Dispatch)>);

impl Sink for Listing {
    fn push(&mut self, label: OpLabel, dispatch: &Dispatch) {
        self.0.push((label, dispatch.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU: Tiles = Tiles { tm: 8, tn: 8, wg_m: 8, wg_n: 8 };

    #[test]
    fn fit_keeps_the_adapter_shape_for_large_gemms() {
        assert_eq!(CPU.fit(512, 65536), CPU);
        assert_eq!(CPU.fit(64, 4096), CPU);
    }

    #[test]
    fn fit_narrows_tiles_for_few_rows_or_columns() {
        // G's last transposed conv to one grey channel: one GEMM row.
        let t = CPU.fit(1, 65536);
        assert!(t.tile_m() == 1 && t.wg_m * t.wg_n == 64, "{t}");
        // Three RGB channels: a 4-row tile wastes 25%, a 64-row tile 95%.
        assert!(CPU.fit(3, 65536).tile_m() <= 4);
        // D's final linear: one output column.
        assert_eq!(CPU.fit(64, 1).tile_n(), 1);
        // SwiftShader's 16x16 blocks on D's first MNIST conv (32 output channels, one input
        // channel): forward 32 x 16384 and weight gradient 32 x 16 without padding rows or columns.
        let swiftshader = Tiles { tm: 16, tn: 16, wg_m: 4, wg_n: 4 };
        let t = swiftshader.fit(32, 16384);
        assert!(32 % t.tile_m() == 0 && (t.tm, t.tn, t.wg_m * t.wg_n) == (16, 16, 16), "{t}");
        let t = swiftshader.fit(32, 16);
        assert!(32 % t.tile_m() == 0 && 16 % t.tile_n() == 0 && t.wg_m * t.wg_n == 16, "{t}");
    }

    #[test]
    fn specialize_unrolls_marked_loops() {
        let src = "const TM: u32 = 4u;\nfn f() {\n    for (var i = 0u; i < TM; i++) { // unroll\n        let x = i;\n    }\n}\n";
        let out = specialize(src, &[("TM", 2)]);
        assert!(out.contains("const TM: u32 = 2u;"));
        assert!(out.contains("let x = 0u;") && out.contains("let x = 1u;") && !out.contains("for ("), "{out}");
    }
}
