//! Every file in shaders/ parses and validates with naga, as written and with every tile shape,
//! conv geometry and compiled-in activation the adapters use (no GPU needed).
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;
use webgan::gpu::{entry_module, specialize, Tiles};
use webgan::ops::conv::geometry_consts;

fn validate(name: &str, source: &str) {
    let module =
        naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
}

#[test]
fn every_shader_file_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wgsl") {
            let source = std::fs::read_to_string(&path).unwrap();
            validate(&path.display().to_string(), &source);
            count += 1;
        }
    }
    assert!(count >= 7, "expected the seven op families' shader files, found {count}");
}

/// Each pipeline compiles only the part of its file that its entry point needs
/// ([`entry_module`]): for every entry point of every file, that part validates, holds that
/// one entry point, and the kernels' layout it relies on holds (an entry point's `fn` right
/// after its `@compute` line).
#[test]
fn every_entry_point_validates_alone() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut count = 0;
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = source.lines().collect();
        for i in (0..lines.len()).filter(|&i| lines[i].starts_with("@compute")) {
            let entry = lines[i + 1].strip_prefix("fn ").and_then(|r| r.split('(').next()).unwrap_or_else(|| {
                panic!("{}:{}: `fn` must follow `@compute` on the next line", path.display(), i + 2)
            });
            let part = entry_module(&source, entry);
            let name = format!("{} entry point {entry} alone", path.display());
            validate(&name, &part);
            let module = naga::front::wgsl::parse_str(&part).unwrap();
            let entries: Vec<&str> = module.entry_points.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(entries, [entry], "{name}");
            count += 1;
        }
    }
    assert!(count >= 30, "expected every op family's entry points, found {count}");
    // The point of it: conv.wgsl's forward kernel leaves the gathers and weight gradients out.
    let conv = include_str!("../shaders/conv.wgsl");
    let direct = entry_module(conv, "conv_direct");
    assert!(direct.contains("fn conv_direct(") && direct.contains("fn epilogue("), "{direct}");
    assert!(!direct.contains("fn conv_gather") && !direct.contains("fn conv_weight_grad"));
    let tiles = Tiles { tm: 8, tn: 8, wg_m: 8, wg_n: 8 };
    let consts = [tiles.consts().as_slice(), &geometry_consts(4, 2, [2, 2], 4, tiles.tn)].concat();
    let (alone, whole) = (specialize(&direct, &consts).len(), specialize(conv, &consts).len());
    println!("conv.wgsl unrolled for 8x8 tiles: {whole} bytes; conv_direct's part: {alone}");
    assert!(alone * 4 < whole, "conv_direct alone is {alone} of {whole} bytes");
}

#[test]
fn tiled_shaders_validate_with_every_tile_shape() {
    let gemms =
        [("conv.wgsl", include_str!("../shaders/conv.wgsl")), ("linear.wgsl", include_str!("../shaders/linear.wgsl"))];
    for tiles in Tiles::CANDIDATES {
        for (name, source) in gemms {
            // conv.wgsl's shared-load sizes follow from the tiles (4x4 stride 2 here).
            let geometry =
                if name == "conv.wgsl" { geometry_consts(4, 2, [2, 2], 4, tiles.tn).to_vec() } else { vec![] };
            validate(
                &format!("{name} with {tiles}"),
                &specialize(source, &[tiles.consts().as_slice(), &geometry].concat()),
            );
        }
    }
    // conv.wgsl also compiles in the kernel size, the stride and the taps per stride phase: 5x5
    // stride 2 has phases of 3 and of 2 taps, 3x3 stride 1 one phase with all of them.
    let conv = include_str!("../shaders/conv.wgsl");
    // (kernel, stride, taps per phase along rows and columns, weight-gradient row steps)
    let cases = [
        (5u32, 2u32, [3, 2], 4),
        (5, 2, [2, 2], 1),
        (4, 2, [2, 2], 2),
        (3, 1, [3, 3], 4),
        (1, 1, [1, 1], 1),
        (2, 3, [0, 1], 1),
    ];
    // ... and the activations fused into its epilogues (ACT after the layer, DACT before it).
    let epilogues =
        [[("ACT", 0), ("DACT", 0)], [("ACT", 1), ("DACT", 0)], [("ACT", 0), ("DACT", 2)], [("ACT", 2), ("DACT", 1)]];
    // ... with the tiles of the square blocks and of the run and tap kernels (three rows by
    // runs of 32 pixels, 8 rows by the 25 taps for conv_weight_grad_taps).
    let tiles =
        [Tiles::CANDIDATES[0], Tiles { tm: 3, tn: 32, wg_m: 1, wg_n: 16 }, Tiles { tm: 8, tn: 25, wg_m: 4, wg_n: 3 }];
    for (((k, s, taps, row_steps), epilogue), tiles) in
        cases.into_iter().zip(epilogues.iter().cycle()).zip(tiles.iter().cycle())
    {
        let consts = [tiles.consts().as_slice(), &geometry_consts(k, s, taps, row_steps, tiles.tn), epilogue].concat();
        validate(&format!("conv.wgsl with kernel {k}, stride {s}, {epilogue:?}, {tiles}"), &specialize(conv, &consts));
    }
}

#[test]
fn activation_shader_validates_with_every_compiled_in_op() {
    let activation = include_str!("../shaders/activation.wgsl");
    for op in 0..4 {
        validate(&format!("activation.wgsl with OP {op}"), &specialize(activation, &[("OP", op)]));
    }
}

#[test]
fn batchnorm_shader_validates_with_every_compiled_in_activation() {
    let batchnorm = include_str!("../shaders/batchnorm.wgsl");
    for act in 0..3 {
        validate(&format!("batchnorm.wgsl with ACT {act}"), &specialize(batchnorm, &[("WG", 16), ("ACT", act)]));
    }
}
