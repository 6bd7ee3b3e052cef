#!/usr/bin/env bash
# Builds, serves and tests webgan. Safe to run again and again: it installs only what is missing.
#
#   ./build.sh           build the wasm package into www/pkg (cargo + wasm-bindgen, no bundler)
#   ./build.sh serve     build, then serve www/ on http://127.0.0.1:${PORT:-8000}/
#   ./build.sh test      install what is missing, then run the native tests (cargo test --release,
#                        GPU = Mesa lavapipe over Vulkan), the browser tests (wasm-pack test in
#                        headless Chromium, WebGPU on SwiftShader) and the page tests (www/ in
#                        headless Chromium through chromedriver, and Firefox ESR through
#                        geckodriver). This is THE test command.
#   ./build.sh bench [--batch N] [--reps N] [--only TEXT] [--tiles TMxTN/WG_MxWG_N|all] [--detail]
#                        the kernel benchmark twice with the same flags: natively (`cargo run
#                        --release --bin webgan-cli -- bench ...`, GPU = the default wgpu adapter),
#                        then in headless Chromium (www/bench.html through chromedriver, WebGPU
#                        on SwiftShader here), printing rows as they are measured. Defaults: batch
#                        64, reps 2, every layer, the adapter's tiles. CPU adapters are slow: try
#                        `./build.sh bench --batch 4 --reps 1 --only "D conv"` first.
#   ./build.sh compare [--models mnist32,page32,dcgan64]
#                      [--backends webgan,webgan-cpu,webgpu,wasm,webgl,cpu,jax-webgpu,jax-wasm]
#                      [--reps N] [--profile]
#                        one training step of the same DCGAN, side by side in one headless
#                        Chromium: this project on WebGPU and on its fast CPU path in wasm
#                        (webgan-cpu), then TensorFlow.js and jax-js (pinned in
#                        www/tfjs/package-lock.json, `npm ci` into www/tfjs/node_modules when it
#                        changed) on their webgpu and wasm backends (jax-js's only on request:
#                        its steps take minutes here); prints ms/step and the ratios. page32 is
#                        the page's "Train on MNIST" model. Fails on errors or non-finite losses, never on
#                        timings. Defaults: mnist32; webgan,webgan-cpu,webgpu,wasm; 2 timed steps
#                        after a warm-up.
#   ./build.sh pages     build, then only the page tests (www/index.html in headless Chromium,
#                        and Firefox ESR when it and geckodriver are installed);
#                        PAGE_TESTS=TEXT runs those whose name contains TEXT
#   ./build.sh faces-split [CELEBA] [OUT]
#                        split the CelebA folder (../shared/data/celeba-aligned-6k: img_align_celeba/
#                        and index.csv) by identity into OUT/celeba-train and OUT/celeba-heldout
#                        (symbolic links; OUT defaults to runs): identities sorted by number,
#                        every 8th held out (20 of 160, 600 images), as the faces model card says
#   ./build.sh deps      only install what `test` needs
#   ./build.sh help      this text
#
# Environment (all optional):
#   PORT, HOST                 where `serve` listens (8000, 127.0.0.1)
#   NATIVE_TIMEOUT             seconds for the native test phase, build included (1500)
#   BROWSER_TIMEOUT            seconds for the browser test phase (Chromium, then Firefox),
#                              build included (1500)
#   PAGE_TIMEOUT               seconds for the page test phase, build included (1500)
#                              (with installing, these fit CI's 90 minutes: 75 minutes of phases)
#   WASM_BINDGEN_TEST_TIMEOUT  seconds one wasm test binary may run in the browser (900)
#   BENCH_TIMEOUT              seconds each half of `bench` may run, native build included (3600)
#   BENCH_SCREENSHOT           `bench`: save a PNG of bench.html, as it ended, to this path
#   COMPARE_TIMEOUT            seconds `compare` may run in the browser (3600)
#   CHROMEDRIVER               chromedriver to use (default: the one on PATH)
#
# Nothing here downloads binaries: wasm-bindgen-cli and wasm-pack come from `cargo install`,
# Chromium, chromedriver and lavapipe from apt, and wasm-pack runs in --mode no-install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_PROGRESS_WHEN=never

TARGET_DIR=${CARGO_TARGET_DIR:-target}
LOG_DIR=$TARGET_DIR/logs
WASM_TARGET=wasm32-unknown-unknown
APT_PACKAGES=(mesa-vulkan-drivers libvulkan1 chromium chromium-driver firefox-esr python3-venv)
GECKODRIVER_VERSION=0.37.1
# The threaded build of the page's CPU path (www/pkg-threads): wasm threads need std rebuilt with
# atomics, which only a nightly toolchain does; pinned, so that a build is reproducible.
NIGHTLY=nightly-2026-05-19

say() { printf 'build.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# Runs a command with its output in a log file; shows the end of the log only if it fails.
quietly() {
    local log=$LOG_DIR/$1
    shift
    mkdir -p "$LOG_DIR"
    if "$@" >"$log" 2>&1; then
        return 0
    else
        local rc=$?
        say "failed (exit $rc): $*"
        tail -n 40 "$log" >&2
        say "full log: $log"
        return "$rc"
    fi
}

# ---------------------------------------------------------------------------------------------
# Installing what is missing
# ---------------------------------------------------------------------------------------------

ensure_apt_packages() {
    if ! have dpkg-query; then
        say "not a Debian system: expecting ${APT_PACKAGES[*]} (or equivalents) to be installed"
        return 0
    fi
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    have python3 || missing+=(python3)       # serves www/, drives the WebGPU preflight
    have cc || missing+=(gcc libc6-dev)       # cargo install builds `ring`, and tests link
    [ ${#missing[@]} -eq 0 ] && return 0

    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        have sudo || die "need root or sudo to install: ${missing[*]}"
        sudo=(sudo -n)
    fi
    say "installing with apt: ${missing[*]}"
    quietly apt.log "${sudo[@]}" apt-get update -q
    quietly apt.log "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Debian 12's lavapipe (Mesa 22.3) turns every storage-buffer load in a loop into a scalar loop
# over the SIMD lanes; Mesa 25 from bookworm-backports gathers instead, and runs the same conv
# kernels 3-5x faster (docs/PERFORMANCE.md). Only speed depends on it: the tests pass on either.
ensure_fast_lavapipe() {
    have dpkg-query && [ "$(id -u)" = 0 ] || return 0
    grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release || return 0
    local installed
    installed=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
    dpkg --compare-versions "${installed:-0}" ge 25 && return 0
    local src=/etc/apt/sources.list.d/webgan-bookworm-backports.sources
    grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ || printf '%s\n' \
        'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' 'Components: main' \
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >"$src"
    say "installing lavapipe from bookworm-backports (Mesa 25)"
    if ! { quietly apt.log apt-get update -q &&
        quietly apt.log env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends -t bookworm-backports mesa-vulkan-drivers; }; then
        say "keeping Debian's own lavapipe (Mesa ${installed:-none}): tests pass, kernels run slower"
    fi
}

ensure_wasm_target() {
    have cargo || die "cargo not found: install Rust (https://rustup.rs) first"
    if have rustup; then
        rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET" && return 0
        say "adding the $WASM_TARGET target (rustup)"
        quietly rustup.log rustup target add "$WASM_TARGET"
    else
        [ -d "$(rustc --print sysroot)/lib/rustlib/$WASM_TARGET" ] ||
            die "no rustup and no $WASM_TARGET standard library in this toolchain"
    fi
}

# The wasm-bindgen version the crate is locked to: the CLI must match it exactly.
locked_wasm_bindgen_version() {
    [ -f Cargo.lock ] || quietly lock.log cargo generate-lockfile
    awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

# `cargo install --locked`, and if that fails to resolve, once more without --locked: some
# registry mirrors lack a version a tool's own Cargo.lock pins (seen with webpki-roots for
# wasm-bindgen-cli 0.2.130), and a freshly resolved build is better than no test run.
cargo_install() {
    local log=$1
    shift
    quietly "$log" cargo install --locked "$@" && return 0
    if grep -q -e 'failed to select a version' -e 'failed to parse lock file' -e 'is yanked' "$LOG_DIR/$log"; then
        say "retrying without --locked: cargo install $*"
        quietly "$log" cargo install "$@"
    else
        return 1
    fi
}

ensure_wasm_bindgen() {
    local want have_version
    want=$(locked_wasm_bindgen_version)
    [ -n "$want" ] || die "no wasm-bindgen entry in Cargo.lock"
    have_version=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
    if [ "$have_version" != "$want" ]; then
        say "installing wasm-bindgen-cli $want (cargo install, takes a few minutes)${have_version:+; found $have_version}"
        cargo_install wasm-bindgen-cli.log wasm-bindgen-cli --version "=$want"
    fi
    have_version=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
    [ "$have_version" = "$want" ] ||
        die "wasm-bindgen on PATH is ${have_version:-missing} ($(command -v wasm-bindgen || true)), Cargo.lock wants $want"
    have wasm-bindgen-test-runner || die "wasm-bindgen-test-runner missing next to wasm-bindgen"
}

ensure_wasm_pack() {
    have wasm-pack && return 0
    say "installing wasm-pack (cargo install, takes a few minutes)"
    cargo_install wasm-pack.log wasm-pack
}

# Firefox's WebDriver, for the Firefox page tests (Debian has no package of it).
# PyTorch for tests/torch.rs and python/ (pinned in python/requirements.txt), in a virtual
# environment under target/; WEBGAN_PYTHON names its Python for the tests. The Linux wheel pulls
# in its CUDA libraries (about 2.8 GB) and runs on the CPU without a GPU.
TORCH_VENV=target/torch-venv
ensure_torch() {
    local stamp=$TORCH_VENV/.requirements
    if ! cmp -s python/requirements.txt "$stamp" 2>/dev/null; then
        say "installing PyTorch into $TORCH_VENV (python/requirements.txt; about 2.8 GB the first time)"
        [ -x "$TORCH_VENV/bin/python" ] || quietly torch.log python3 -m venv "$TORCH_VENV"
        quietly torch.log "$TORCH_VENV/bin/python" -m pip install --no-input --disable-pip-version-check \
            -r python/requirements.txt
        cp python/requirements.txt "$stamp"
    fi
    WEBGAN_PYTHON=$(cd "$TORCH_VENV/bin" && pwd)/python
    export WEBGAN_PYTHON
}

ensure_geckodriver() {
    geckodriver --version 2>/dev/null | grep -q "^geckodriver $GECKODRIVER_VERSION" && return 0
    say "installing geckodriver $GECKODRIVER_VERSION (cargo install, takes a few minutes)"
    cargo_install geckodriver.log geckodriver --version "=$GECKODRIVER_VERSION"
}

# geckodriver where Firefox is installed too (`./build.sh test` installs both), else nothing:
# the Firefox tests are then left out, and that is said.
geckodriver_path() {
    local gecko=''
    { have firefox-esr || have firefox; } && gecko=$(command -v geckodriver || true)
    [ -n "$gecko" ] || say "no Firefox or geckodriver: the Firefox tests are left out"
    printf '%s\n' "$gecko"
}

chromedriver_path() {
    local d=${CHROMEDRIVER:-}
    [ -n "$d" ] || d=$(command -v chromedriver || true)
    [ -n "$d" ] || { [ -x /usr/bin/chromedriver ] && d=/usr/bin/chromedriver; }
    [ -n "$d" ] || die "chromedriver not found (Debian package chromium-driver)"
    printf '%s\n' "$d"
}

# Mesa's Vulkan loader and Chromium complain loudly ("error: XDG_RUNTIME_DIR is invalid")
# when there is no session runtime directory, as on CI; give them a private one.
ensure_runtime_dir() {
    if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
        export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/webgan-runtime-$(id -u)"
        mkdir -p "$XDG_RUNTIME_DIR"
        chmod 700 "$XDG_RUNTIME_DIR"
    fi
}

# The pinned nightly with the standard library's source (for -Z build-std); fails if rustup
# cannot install it (the page then runs its CPU path on one thread).
ensure_nightly() {
    have rustup || return 1
    local sysroot
    sysroot=$(rustup run "$NIGHTLY" rustc --print sysroot 2>/dev/null) &&
        [ -d "$sysroot/lib/rustlib/src/rust/library" ] && return 0
    say "installing $NIGHTLY with rust-src (rustup), for the threaded CPU path"
    quietly nightly.log rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src
}

build_deps() { ensure_wasm_target; ensure_wasm_bindgen; }
test_deps() { ensure_apt_packages; ensure_fast_lavapipe; build_deps; ensure_wasm_pack; ensure_geckodriver; ensure_torch; }

# ---------------------------------------------------------------------------------------------
# Build and serve
# ---------------------------------------------------------------------------------------------

build() {
    build_deps
    say "cargo build --release --target $WASM_TARGET --lib"
    cargo build --release --target "$WASM_TARGET" --lib
    local wasm=$TARGET_DIR/$WASM_TARGET/release/webgan.wasm
    [ -f "$wasm" ] || die "cargo did not produce $wasm"
    rm -rf www/pkg
    wasm-bindgen --target web --no-typescript --out-dir www/pkg "$wasm"
    say "built www/pkg ($(du -sh www/pkg | cut -f1)): $(cd www/pkg && echo *)"
    build_threads
}

# Atomics, shared memory and the thread-local-storage exports wasm-bindgen's thread support needs
# (the threaded page build and tests/threads.rs share them, and so their target dir).
threads_rustflags() {
    local link=(--shared-memory --import-memory --max-memory=4294967296
        --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base)
    echo "-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128 ${link[*]/#/-C link-arg=}"
}

# www/pkg-threads: the same crate with wasm threads (atomics, shared memory up to 4 GiB), for
# the CPU worker on cross-origin-isolated pages: rayon's pool runs on Web Workers
# (wasm-bindgen-rayon). Its own target dir: std and every dependency are built with atomics.
build_threads() {
    rm -rf www/pkg-threads
    if ! ensure_nightly; then
        say "no $NIGHTLY toolchain: www/pkg-threads not built, the page's CPU path runs on one thread"
        return 0
    fi
    say "cargo +$NIGHTLY build -Z build-std --release --target $WASM_TARGET --lib (threads)"
    RUSTFLAGS=$(threads_rustflags) CARGO_TARGET_DIR="$TARGET_DIR/threads" \
        cargo +"$NIGHTLY" build -Z build-std=std,panic_abort --release --target "$WASM_TARGET" --lib
    local wasm=$TARGET_DIR/threads/$WASM_TARGET/release/webgan.wasm
    [ -f "$wasm" ] || die "cargo did not produce $wasm"
    wasm-bindgen --target web --no-typescript --out-dir www/pkg-threads "$wasm"
    say "built www/pkg-threads ($(du -sh www/pkg-threads | cut -f1))"
}

serve() {
    have python3 || die "python3 is needed to serve www/"
    webgan_py serve "${HOST:-127.0.0.1}" "${PORT:-8000}"
}

# ---------------------------------------------------------------------------------------------
# The web helper: tests/page/web.py (Python, standard library only) does everything that needs a
# web server or a browser: serve, the WebGPU preflight, bench, the page tests.
# ---------------------------------------------------------------------------------------------

webgan_py() {
    python3 tests/page/web.py "$@"
}

# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

# Proves headless Chromium, driven by chromedriver with webdriver.json's flags (plus the ones
# wasm-bindgen-test-runner adds), hands out a WebGPU adapter that runs a compute shader. Without
# this a missing WebGPU would surface only as failing tests; here it is named as the cause.
webgpu_preflight() {
    webgan_py preflight "$1" webdriver.json
}

# Sums libtest's "test result: ok. N passed; M failed; ..." lines in a log: prints "N M".
# Doc-test sections are left out when $2 is "nodoc" (in the browser phase they are not browser tests).
count_results() {
    awk -v nodoc="${2:-}" '
        /^ *Doc-tests / { skip = (nodoc == "nodoc"); next }
        /^ *Running / { skip = 0 }
        !skip && match($0, /test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed/) {
            split(substr($0, RSTART, RLENGTH), w, " ")
            p += w[4]; f += w[6]
        }
        END { print p + 0, f + 0 }' "$1"
}

# Runs one phase under a time limit, output to the terminal and to a log. Sets PHASE_RC and
# PHASE_SECS (its wall time).
run_phase() {
    local name=$1 limit=$2 log=$3 started=$SECONDS
    shift 3
    mkdir -p "$LOG_DIR"
    say "$name: $* (time limit ${limit}s, log $log)"
    set +e
    timeout -k 30 "$limit" "$@" 2>&1 | tee "$log"
    PHASE_RC=${PIPESTATUS[0]}
    set -e
    PHASE_SECS=$((SECONDS - started))
    [ "$PHASE_RC" -eq 124 ] && say "$name: TIMED OUT after ${limit}s"
    return 0
}

# Each binary's own time, from libtest's "test result: ... finished in 12.34s" under its
# "Running tests/x.rs" line: the slowest first, so the next one to shorten is named.
binary_times() {
    awk '/^ *Running / { name = $2 }
         /test result: .* finished in / { t = $NF; sub(/s$/, "", t); if (name != "") printf "%8.1f s  %s\n", t, name; name = "" }' "$1" |
        sort -rn | head -n "${2:-8}"
}

# Builds www/pkg, then runs the page tests (tests/page/page_tests.py; PAGE_TESTS=text runs only
# those whose name contains it). Screenshots go to $TARGET_DIR/page-shots.
run_pages() {
    build_deps
    ensure_torch # a_pytorch_checkpoint_round_trip runs PyTorch (WEBGAN_PYTHON)
    ensure_runtime_dir
    quietly wasm-build.log build
    webgan_py pages "$(chromedriver_path)" webdriver.json "$TARGET_DIR/page-shots" "$(geckodriver_path)"
}

# The wasm tests in the browsers: tests/browser.rs and the library's unit tests in Chromium,
# tests/threads.rs on wasm threads in Chromium, then tests/firefox.rs in Firefox with its own
# WebGPU (when Firefox and geckodriver are there).
# The tests run even without WebGPU: they must then fail on their own, loudly, not skip.
# Doc-tests are a native matter. (No --no-fail-fast: wasm-pack hands these arguments to `cargo
# build` too, which refuses it; each binary's tests all run under libtest anyway.)
run_browser_tests() {
    local driver=$1 gecko rc=0
    env CHROMEDRIVER="$driver" wasm-pack test --headless --chrome --chromedriver "$driver" \
        --mode no-install --release -- --lib --test browser || rc=$?
    # The page's threaded CPU path: built as www/pkg-threads is, run by wasm-bindgen's runner.
    if ensure_nightly; then
        say "browser: tests/threads.rs on wasm threads ($NIGHTLY, -Z build-std)"
        env RUSTFLAGS="$(threads_rustflags)" CARGO_TARGET_DIR="$TARGET_DIR/threads" CHROMEDRIVER="$driver" \
            CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
            cargo +"$NIGHTLY" test -Z build-std=std,panic_abort --release --target "$WASM_TARGET" --test threads || rc=$?
    else
        say "browser: no $NIGHTLY toolchain (rustup failed): tests/threads.rs not run, and the page has no threaded build"
        rc=1
    fi
    gecko=$(geckodriver_path)
    if [ -n "$gecko" ]; then
        say "browser: $(firefox-esr --version 2>/dev/null || firefox --version 2>/dev/null || true); $("$gecko" --version 2>/dev/null | head -n 1 || true)"
        env GECKODRIVER="$gecko" wasm-pack test --headless --firefox --geckodriver "$gecko" \
            --mode no-install --release -- --test firefox || rc=$?
    fi
    return "$rc"
}

run_tests() {
    test_deps
    ensure_runtime_dir
    local native_log=$LOG_DIR/native-tests.log browser_log=$LOG_DIR/browser-tests.log
    local native_rc browser_rc driver native_secs browser_secs page_secs installed_secs=$SECONDS

    # `cargo test --release` with its test binaries run side by side, each to its end whatever
    # the others do (tests/run_native.py says why).
    run_phase native "${NATIVE_TIMEOUT:-1500}" "$native_log" python3 tests/run_native.py
    native_rc=$PHASE_RC native_secs=$PHASE_SECS

    driver=$(chromedriver_path)
    say "browser: $(chromium --version 2>/dev/null | head -n 1 || true); $("$driver" --version 2>/dev/null | head -n 1 || true)"
    local preflight_rc=0
    webgpu_preflight "$driver" || preflight_rc=$?
    export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-900}
    run_phase browser "${BROWSER_TIMEOUT:-1500}" "$browser_log" "$0" browser-tests "$driver"
    browser_rc=$PHASE_RC browser_secs=$PHASE_SECS

    # The page itself (www/index.html) in headless Chromium and Firefox: tests/page/page_tests.py.
    local page_log=$LOG_DIR/page-tests.log page_rc
    run_phase page "${PAGE_TIMEOUT:-1500}" "$page_log" \
        "$0" pages
    page_rc=$PHASE_RC page_secs=$PHASE_SECS
    if [ "$preflight_rc" -ne 0 ]; then
        say "browser: FAILED: headless Chromium has no WebGPU with webdriver.json's flags (see above)"
        [ "$browser_rc" -ne 0 ] || browser_rc=1
    fi

    local np nf bp bf pp pf native_ran browser_ran page_ran
    read -r np nf < <(count_results "$native_log")
    read -r bp bf < <(count_results "$browser_log" nodoc)
    read -r pp pf < <(count_results "$page_log")
    native_ran=$((np + nf))
    browser_ran=$((bp + bf))
    page_ran=$((pp + pf))
    # A phase that failed without a failing test (build error, crash, timeout) counts as one failure.
    [ "$native_rc" -ne 0 ] && [ "$nf" -eq 0 ] && nf=1
    [ "$browser_rc" -ne 0 ] && [ "$bf" -eq 0 ] && bf=1
    [ "$page_rc" -ne 0 ] && [ "$pf" -eq 0 ] && pf=1
    local status=0
    [ "$native_rc" -eq 0 ] || status=1
    [ "$browser_rc" -eq 0 ] || status=1
    [ "$page_rc" -eq 0 ] || status=1
    # A phase that ran no test proves nothing: that is a failure too.
    if [ "$native_ran" -eq 0 ]; then say "native: no tests ran: that is a failure"; nf=1 status=1; fi
    if [ "$browser_ran" -eq 0 ]; then say "browser: no tests ran: that is a failure"; bf=1 status=1; fi
    if [ "$page_ran" -eq 0 ]; then say "page: no tests ran: that is a failure"; pf=1 status=1; fi
    echo
    echo "slowest native test binaries:"
    binary_times "$native_log"
    echo
    echo "installing:    $installed_secs s"
    echo "native tests:  $native_ran ran, $np passed, $nf failed (exit $native_rc) in $native_secs s (limit ${NATIVE_TIMEOUT:-1500} s)"
    echo "browser tests: $browser_ran ran, $bp passed, $bf failed (exit $browser_rc) in $browser_secs s (limit ${BROWSER_TIMEOUT:-1500} s)"
    echo "page tests:    $page_ran ran, $pp passed, $pf failed (exit $page_rc) in $page_secs s (limit ${PAGE_TIMEOUT:-1500} s; screenshots in $TARGET_DIR/page-shots)"
    echo "$((np + bp + pp)) passed, $((nf + bf + pf)) failed in $SECONDS s"
    return "$status"
}

# ---------------------------------------------------------------------------------------------
# Kernel benchmark, natively and in the browser
# ---------------------------------------------------------------------------------------------

# Parses `bench`'s flags, the native CLI's own (--batch N --reps N --only TEXT --tiles T, also as
# --flag=VALUE), into BENCH_BATCH, BENCH_REPS, BENCH_ONLY and BENCH_TILES ("": the default).
parse_bench_args() {
    BENCH_BATCH='' BENCH_REPS='' BENCH_ONLY='' BENCH_TILES='' BENCH_DETAIL=''
    local flag value
    while [ $# -gt 0 ]; do
        case $1 in
            --*=*) flag=${1%%=*} value=${1#*=}; shift ;;
            --batch | --reps | --only | --tiles)
                [ $# -ge 2 ] || die "bench: $1 needs a value"
                flag=$1 value=$2
                shift 2
                ;;
            *) flag=$1; shift ;;
        esac
        case $flag in
            --batch | --reps)
                [[ $value =~ ^[1-9][0-9]*$ ]] || die "bench: $flag wants a positive integer, not '$value'"
                if [ "$flag" = --batch ]; then BENCH_BATCH=$value; else BENCH_REPS=$value; fi
                ;;
            --only) BENCH_ONLY=$value ;;
            --detail) BENCH_DETAIL=1 ;;
            --tiles)
                [[ $value == all || $value =~ ^[0-9]+x[0-9]+/[0-9]+x[0-9]+(,[0-9]+x[0-9]+/[0-9]+x[0-9]+)*$ ]] ||
                    die "bench: --tiles wants TMxTN/WG_MxWG_N (e.g. 4x4/4x16) or 'all', not '$value'"
                BENCH_TILES=$value
                ;;
            *) die "bench: unknown argument '$flag' (want --batch N, --reps N, --only TEXT, --tiles TMxTN/WG_MxWG_N|all, --detail)" ;;
        esac
    done
}

run_bench() {
    parse_bench_args "$@"
    local limit=${BENCH_TIMEOUT:-3600}
    [[ $limit =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIMEOUT wants a positive number of seconds, not '$limit'"
    ensure_apt_packages
    build
    ensure_runtime_dir

    local args=() native_rc=0 browser_rc=0 driver
    if [ -n "$BENCH_BATCH" ]; then args+=(--batch "$BENCH_BATCH"); fi
    if [ -n "$BENCH_REPS" ]; then args+=(--reps "$BENCH_REPS"); fi
    if [ -n "$BENCH_ONLY" ]; then args+=(--only "$BENCH_ONLY"); fi
    if [ -n "$BENCH_TILES" ]; then args+=(--tiles "$BENCH_TILES"); fi
    if [ -n "$BENCH_DETAIL" ]; then args+=(--detail); fi

    # --foreground: Ctrl-C reaches the benchmark (`cargo run` execs it, so it is timeout's child).
    say "native: cargo run --release --bin webgan-cli -- bench ${args[*]} (time limit ${limit}s, build included)"
    timeout --foreground -k 30 "$limit" cargo run --release --bin webgan-cli -- bench "${args[@]}" || native_rc=$?
    if [ "$native_rc" -eq 124 ]; then say "native: TIMED OUT after ${limit}s (BENCH_TIMEOUT)"; fi

    driver=$(chromedriver_path)
    say "browser: www/bench.html in $(chromium --version 2>/dev/null | head -n 1 || true) via $("$driver" --version 2>/dev/null | head -n 1 | cut -d' ' -f1-2 || true) (time limit ${limit}s)"
    webgan_py bench "$driver" webdriver.json "$limit" "${BENCH_SCREENSHOT:-}" \
        "$BENCH_BATCH" "$BENCH_REPS" "$BENCH_ONLY" "$BENCH_TILES" "$BENCH_DETAIL" || browser_rc=$?

    echo
    echo "native bench:  $([ "$native_rc" -eq 0 ] && echo ok || echo "FAILED (exit $native_rc)")"
    echo "browser bench: $([ "$browser_rc" -eq 0 ] && echo ok || echo "FAILED (exit $browser_rc)")"
    [ "$native_rc" -eq 0 ] && [ "$browser_rc" -eq 0 ]
}

# ---------------------------------------------------------------------------------------------
# Side by side with TensorFlow.js (www/tfjs/; docs/PERFORMANCE.md, "TensorFlow.js, side by side")
# ---------------------------------------------------------------------------------------------

# TensorFlow.js as www/tfjs/package-lock.json pins it, into www/tfjs/node_modules (git-ignored,
# development only): `npm ci` when the lock file differs from the one last installed.
ensure_tfjs() {
    local dir=www/tfjs stamp=www/tfjs/node_modules/.webgan-installed-lock
    if ! have npm; then
        [ "$(id -u)" = 0 ] && have apt-get || die "npm is needed for TensorFlow.js (Debian packages nodejs npm)"
        say "installing with apt: nodejs npm"
        quietly apt.log apt-get update -q
        quietly apt.log env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
    fi
    cmp -s "$dir/package-lock.json" "$stamp" && return 0
    say "npm ci in $dir (TensorFlow.js, pinned)"
    quietly npm.log npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts
    cp "$dir/package-lock.json" "$stamp"
}

run_compare() {
    local models='' backends='' reps='' profile=''
    while [ $# -gt 0 ]; do
        case $1 in
            --models | --backends | --reps)
                [ $# -ge 2 ] || die "compare: $1 needs a value"
                case $1 in --models) models=$2 ;; --backends) backends=$2 ;; --reps) reps=$2 ;; esac
                shift 2
                ;;
            --models=*) models=${1#*=}; shift ;;
            --backends=*) backends=${1#*=}; shift ;;
            --reps=*) reps=${1#*=}; shift ;;
            --profile) profile=1; shift ;;
            *) die "compare: unknown argument '$1' (want --models LIST, --backends LIST, --reps N, --profile)" ;;
        esac
    done
    [ -z "$reps" ] || [[ $reps =~ ^[1-9][0-9]*$ ]] || die "compare: --reps wants a positive integer, not '$reps'"
    local limit=${COMPARE_TIMEOUT:-3600}
    [[ $limit =~ ^[1-9][0-9]*$ ]] || die "COMPARE_TIMEOUT wants a positive number of seconds, not '$limit'"
    ensure_apt_packages
    ensure_tfjs
    build
    ensure_runtime_dir
    local driver
    driver=$(chromedriver_path)
    say "browser: www/tfjs/index.html in $(chromium --version 2>/dev/null | head -n 1 || true) (time limit ${limit}s)"
    webgan_py compare "$driver" webdriver.json "$limit" "$models" "$backends" "$reps" "$profile"
}

# The faces model card's split: every 8th identity (by number) is kept out of training.
faces_split() {
    local src=${1:-../shared/data/celeba-aligned-6k} out=${2:-runs}
    [ -f "$src/index.csv" ] && [ -d "$src/img_align_celeba" ] ||
        die "faces-split: $src holds no index.csv and img_align_celeba/"
    local held
    held=$(tail -n +2 "$src/index.csv" | while IFS=, read -r file id _; do
        [ -f "$src/img_align_celeba/$file" ] && echo "$id"
    done | sort -un | awk 'NR % 8 == 0' | tr '\n' ' ')
    rm -rf "$out/celeba-train" "$out/celeba-heldout"
    mkdir -p "$out/celeba-train" "$out/celeba-heldout"
    local abs
    abs=$(cd "$src/img_align_celeba" && pwd)
    tail -n +2 "$src/index.csv" | while IFS=, read -r file id _; do
        [ -f "$abs/$file" ] || continue
        case " $held" in *" $id "*) ln -s "$abs/$file" "$out/celeba-heldout/$file" ;;
            *) ln -s "$abs/$file" "$out/celeba-train/$file" ;; esac
    done
    say "held out identities: $held"
    say "$(ls "$out/celeba-train" | wc -l) training images in $out/celeba-train, $(ls "$out/celeba-heldout" | wc -l) held out in $out/celeba-heldout"
}

case "${1:-build}" in
    build) build ;;
    serve) build && serve ;;
    test) run_tests ;;
    pages) run_pages ;;
    browser-tests) shift && run_browser_tests "$@" ;;
    bench) shift && run_bench "$@" ;;
    compare) shift && run_compare "$@" ;;
    deps) test_deps ;;
    faces-split) shift && faces_split "$@" ;;
    -h | --help | help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
    *) die "unknown command '$1' (build, serve, test, pages, bench, compare, faces-split, deps, help)" ;;
esac
