#!/usr/bin/env bash
# Builds, serves and tests webgan. Safe to run again and again: it installs only what is missing.
#
#   ./build.sh           build the wasm package into www/pkg (cargo + wasm-bindgen, no bundler)
#   ./build.sh serve     build, then serve www/ on http://127.0.0.1:${PORT:-8000}/
#   ./build.sh test      install what is missing, then run the native tests (cargo test --release,
#                        GPU = Mesa lavapipe over Vulkan) and the browser tests (wasm-pack test in
#                        headless Chromium, WebGPU on SwiftShader). This is THE test command.
#   ./build.sh deps      only install what `test` needs
#
# Environment (all optional):
#   PORT, HOST                 where `serve` listens (8000, 127.0.0.1)
#   NATIVE_TIMEOUT             seconds for the native test phase, build included (1800)
#   BROWSER_TIMEOUT            seconds for the browser test phase, build included (1800)
#   WASM_BINDGEN_TEST_TIMEOUT  seconds one wasm test binary may run in the browser (900)
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
APT_PACKAGES=(mesa-vulkan-drivers libvulkan1 chromium chromium-driver)

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

chromedriver_path() {
    local d=${CHROMEDRIVER:-}
    [ -n "$d" ] || d=$(command -v chromedriver || true)
    [ -n "$d" ] || { [ -x /usr/bin/chromedriver ] && d=/usr/bin/chromedriver; }
    [ -n "$d" ] || die "chromedriver not found (Debian package chromium-driver)"
    printf '%s\n' "$d"
}

build_deps() { ensure_wasm_target; ensure_wasm_bindgen; }
test_deps() { ensure_apt_packages; build_deps; ensure_wasm_pack; }

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
}

serve() {
    have python3 || die "python3 is needed to serve www/"
    local host=${HOST:-127.0.0.1} port=${PORT:-8000}
    python3 - "$host" "$port" <<'PY'
import functools, http.server, sys

host, port = sys.argv[1], int(sys.argv[2])

class Handler(http.server.SimpleHTTPRequestHandler):
    # Explicit types: browsers refuse to stream-compile wasm served with any other type, and
    # module scripts need a JavaScript type; the platform's mime.types may lack either.
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".css": "text/css",
        ".html": "text/html",
        ".png": "image/png",
        ".safetensors": "application/octet-stream",
    }

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")  # a rebuilt pkg/ is picked up on reload
        super().end_headers()

try:
    server = http.server.ThreadingHTTPServer((host, port), functools.partial(Handler, directory="www"))
except OSError as e:
    sys.exit(f"build.sh: cannot listen on {host}:{port}: {e.strerror} (set PORT to use another port)")
print(f"Serving www/ at http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
PY
}

# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

# Proves headless Chromium, driven by chromedriver with webdriver.json's flags (plus the ones
# wasm-bindgen-test-runner adds), hands out a WebGPU adapter that runs a compute shader. Without
# this a missing WebGPU would surface only as failing tests; here it is named as the cause.
webgpu_preflight() {
    local driver=$1
    timeout -k 10 120 python3 - "$driver" webdriver.json <<'PY'
import http.server, json, socket, subprocess, sys, threading, time, urllib.request

driver, caps_file = sys.argv[1], sys.argv[2]
PAGE = b"<!doctype html><title>webgpu preflight</title>"
SCRIPT = """
const done = arguments[arguments.length - 1];
(async () => {
  if (!navigator.gpu) return 'navigator.gpu is missing (isSecureContext=' + isSecureContext + ')';
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return 'navigator.gpu.requestAdapter() returned null';
  const device = await adapter.requestDevice();
  const module = device.createShaderModule({ code: `
    @group(0) @binding(0) var<storage, read_write> b: array<u32>;
    @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
      if (g.x < arrayLength(&b)) { b[g.x] = 2u * g.x; }
    }` });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const buf = device.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const rb = device.createBuffer({ size: 1024, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline); pass.setBindGroup(0, bind); pass.dispatchWorkgroups(4); pass.end();
  enc.copyBufferToBuffer(buf, 0, rb, 0, 1024);
  device.queue.submit([enc.finish()]);
  await rb.mapAsync(GPUMapMode.READ);
  const last = new Uint32Array(rb.getMappedRange())[255];
  if (last !== 510) return 'compute shader wrote ' + last + ' instead of 510';
  const i = adapter.info || {};
  return 'OK ' + [i.vendor, i.architecture, i.description].filter(Boolean).join(' / ');
})().then(done, (e) => done('error: ' + e));
"""

class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)
    def log_message(self, *args):
        pass

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=90) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        raise SystemExit(f"chromedriver said {e.code}: {e.read().decode(errors='replace')[:2000]}")

page = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
threading.Thread(target=page.serve_forever, daemon=True).start()
port = free_port()
proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}"
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/status", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    with open(caps_file) as f:
        caps = json.load(f)
    opts = caps.setdefault("goog:chromeOptions", {})
    opts["args"] = opts.get("args", []) + ["headless", "disable-dev-shm-usage", "no-sandbox"]
    sid = call("POST", base + "/session", {"capabilities": {"alwaysMatch": caps}})["value"]["sessionId"]
    try:
        call("POST", f"{base}/session/{sid}/timeouts", {"script": 60000})
        call("POST", f"{base}/session/{sid}/url", {"url": f"http://127.0.0.1:{page.server_address[1]}/"})
        result = call("POST", f"{base}/session/{sid}/execute/async", {"script": SCRIPT, "args": []})["value"]
    finally:
        call("DELETE", f"{base}/session/{sid}")
finally:
    proc.terminate()
    proc.wait(timeout=10)
    page.shutdown()
if not isinstance(result, str) or not result.startswith("OK"):
    raise SystemExit(f"WebGPU is NOT available in headless Chromium with webdriver.json's flags: {result}")
print(f"WebGPU in headless Chromium: {result[3:] or 'adapter (no info)'}")
PY
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

# Runs one phase under a time limit, output to the terminal and to a log. Sets PHASE_RC.
run_phase() {
    local name=$1 limit=$2 log=$3
    shift 3
    mkdir -p "$LOG_DIR"
    say "$name: $* (time limit ${limit}s, log $log)"
    set +e
    timeout -k 30 "$limit" "$@" 2>&1 | tee "$log"
    PHASE_RC=${PIPESTATUS[0]}
    set -e
    [ "$PHASE_RC" -eq 124 ] && say "$name: TIMED OUT after ${limit}s"
    return 0
}

run_tests() {
    test_deps
    # Mesa's Vulkan loader and Chromium complain loudly ("error: XDG_RUNTIME_DIR is invalid")
    # when there is no session runtime directory, as on CI; give them a private one.
    if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
        export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/webgan-runtime-$(id -u)"
        mkdir -p "$XDG_RUNTIME_DIR"
        chmod 700 "$XDG_RUNTIME_DIR"
    fi
    local native_log=$LOG_DIR/native-tests.log browser_log=$LOG_DIR/browser-tests.log
    local native_rc browser_rc driver

    run_phase native "${NATIVE_TIMEOUT:-1800}" "$native_log" cargo test --release
    native_rc=$PHASE_RC

    driver=$(chromedriver_path)
    say "browser: $(chromium --version 2>/dev/null | head -n 1 || true); $("$driver" --version 2>/dev/null | head -n 1 || true)"
    local preflight_rc=0
    webgpu_preflight "$driver" || preflight_rc=$?
    # The tests run even without WebGPU: they must then fail on their own, loudly, not skip.
    # `--lib --test '*'`: unit and integration tests only; doc-tests are a native matter.
    export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-900}
    run_phase browser "${BROWSER_TIMEOUT:-1800}" "$browser_log" \
        env CHROMEDRIVER="$driver" wasm-pack test --headless --chrome --chromedriver "$driver" \
        --mode no-install --release -- --lib --test '*'
    browser_rc=$PHASE_RC
    if [ "$preflight_rc" -ne 0 ]; then
        say "browser: FAILED: headless Chromium has no WebGPU with webdriver.json's flags (see above)"
        [ "$browser_rc" -ne 0 ] || browser_rc=1
    fi

    local np nf bp bf native_ran browser_ran
    read -r np nf < <(count_results "$native_log")
    read -r bp bf < <(count_results "$browser_log" nodoc)
    native_ran=$((np + nf))
    browser_ran=$((bp + bf))
    # A phase that failed without a failing test (build error, crash, timeout) counts as one failure.
    [ "$native_rc" -ne 0 ] && [ "$nf" -eq 0 ] && nf=1
    [ "$browser_rc" -ne 0 ] && [ "$bf" -eq 0 ] && bf=1
    local status=0
    [ "$native_rc" -eq 0 ] || status=1
    [ "$browser_rc" -eq 0 ] || status=1
    if [ "$browser_ran" -eq 0 ]; then
        say "browser: no browser tests ran: that is a failure"
        bf=1
        status=1
    fi
    echo
    echo "native tests:  $native_ran ran, $np passed, $nf failed (exit $native_rc)"
    echo "browser tests: $browser_ran ran, $bp passed, $bf failed (exit $browser_rc)"
    echo "$((np + bp)) passed, $((nf + bf)) failed"
    return "$status"
}

case "${1:-build}" in
    build) build ;;
    serve) build && serve ;;
    test) run_tests ;;
    deps) test_deps ;;
    -h | --help | help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
    *) die "unknown command '$1' (build, serve, test, deps)" ;;
esac
