#!/usr/bin/env bash
# Builds, serves and tests webgan. Safe to run again and again: it installs only what is missing.
#
#   ./build.sh           build the wasm package into www/pkg (cargo + wasm-bindgen, no bundler)
#   ./build.sh serve     build, then serve www/ on http://127.0.0.1:${PORT:-8000}/
#   ./build.sh test      install what is missing, then run the native tests (cargo test --release,
#                        GPU = Mesa lavapipe over Vulkan) and the browser tests (wasm-pack test in
#                        headless Chromium, WebGPU on SwiftShader). This is THE test command.
#   ./build.sh bench [--batch N] [--reps N] [--only TEXT] [--tiles TMxTN/WG_MxWG_N|all]
#                        the kernel benchmark twice with the same flags: natively (`cargo run
#                        --release --bin webgan-cli -- bench ...`, GPU = the default wgpu adapter),
#                        then in headless Chromium (www/bench.html through chromedriver, WebGPU
#                        on SwiftShader here), printing rows as they are measured. Defaults: batch
#                        64, reps 2, every layer, the adapter's tiles. CPU adapters are slow: try
#                        `./build.sh bench --batch 4 --reps 1 --only "D conv"` first.
#   ./build.sh deps      only install what `test` needs
#   ./build.sh help      this text
#
# Environment (all optional):
#   PORT, HOST                 where `serve` listens (8000, 127.0.0.1)
#   NATIVE_TIMEOUT             seconds for the native test phase, build included (1800)
#   BROWSER_TIMEOUT            seconds for the browser test phase, build included (1800)
#   WASM_BINDGEN_TEST_TIMEOUT  seconds one wasm test binary may run in the browser (900)
#   BENCH_TIMEOUT              seconds each half of `bench` may run, native build included (3600)
#   BENCH_SCREENSHOT           `bench`: save a PNG of bench.html, as it ended, to this path
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

# Debian 12's lavapipe (Mesa 22.3) turns every storage-buffer load in a loop into a scalar loop
# over the SIMD lanes; Mesa 25 from bookworm-backports gathers instead, and runs the same conv
# kernels 3-5x faster (README). Only speed depends on it: the tests pass on either.
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

build_deps() { ensure_wasm_target; ensure_wasm_bindgen; }
test_deps() { ensure_apt_packages; ensure_fast_lavapipe; build_deps; ensure_wasm_pack; }

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
    webgan_py serve "${HOST:-127.0.0.1}" "${PORT:-8000}"
}

# ---------------------------------------------------------------------------------------------
# The web helper: one Python program (standard library only) for everything that needs a web
# server or a browser, so `serve`, the WebGPU preflight and `bench` share one www/ server and
# one WebDriver client.
#
#   webgan_py serve HOST PORT               serve www/ until Ctrl-C
#   webgan_py preflight DRIVER CAPS         prove headless Chromium has WebGPU (see below)
#   webgan_py bench DRIVER CAPS LIMIT SHOT BATCH REPS ONLY TILES
#                                           run www/bench.html, print its lines as they come;
#                                           empty BATCH/REPS/ONLY/TILES: the page's default,
#                                           empty SHOT: no screenshot
#
# Browsers come from chromedriver with CAPS (webdriver.json) plus the flags
# wasm-bindgen-test-runner adds, so what works here works in `./build.sh test` and vice versa.
# Time limits are kept inside Python (SIGALRM), so that on a timeout, Ctrl-C or SIGTERM the
# browser session is closed and chromedriver stopped instead of being left behind.
# ---------------------------------------------------------------------------------------------

webgan_py() {
    python3 - "$@" <<'PY'
import base64, functools, http.server, json, signal, socket, subprocess, sys, threading, time
import urllib.error, urllib.parse, urllib.request


class Fail(Exception):
    """A failure to report as one `build.sh: error: ...` line."""


class Www(http.server.SimpleHTTPRequestHandler):
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
    quiet = False

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")  # a rebuilt pkg/ is picked up on reload
        super().end_headers()

    def log_message(self, *args):
        if not self.quiet:
            super().log_message(*args)


class QuietWww(Www):
    quiet = True


def serve_in_background(handler):
    """A loopback server on a free port, serving from a daemon thread."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def limit_time(seconds, what):
    """Raises Fail in the main thread after `seconds`, whatever it is blocked in."""
    def expired(signum, frame):
        raise Fail(f"{what}: timed out after {seconds} s")
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)


class Browser:
    """chromedriver plus one headless Chromium session; a context manager that always cleans up."""

    def __init__(self, driver, caps_file, console_log=False):
        self.driver, self.caps_file, self.console_log = driver, caps_file, console_log
        self.proc = self.sid = None

    def call(self, method, path, body=None, timeout=90):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise Fail(f"chromedriver said {e.code}: {e.read().decode(errors='replace')[:2000]}")
        except OSError as e:
            raise Fail(f"chromedriver did not answer {method} {path}: {e}")

    def cmd(self, method, path, body=None, timeout=90):
        """A command in this session: `path` is relative to /session/{id}."""
        return self.call(method, f"/session/{self.sid}{path}", body, timeout)["value"]

    def __enter__(self):
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([self.driver, f"--port={port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                if self.proc.poll() is not None:
                    raise Fail(f"chromedriver ({self.driver}) exited with status {self.proc.returncode}")
                try:
                    urllib.request.urlopen(self.base + "/status", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                raise Fail(f"chromedriver ({self.driver}) did not start listening on port {port}")
            with open(self.caps_file) as f:
                caps = json.load(f)
            opts = caps.setdefault("goog:chromeOptions", {})
            opts["args"] = opts.get("args", []) + ["headless", "disable-dev-shm-usage", "no-sandbox"]
            if self.console_log:
                caps["goog:loggingPrefs"] = {"browser": "ALL"}
            self.sid = self.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["value"]["sessionId"]
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        signal.alarm(0)  # cleaning up must not be cut short by the time limit
        try:
            if self.sid is not None:
                self.call("DELETE", f"/session/{self.sid}", timeout=30)
        except Exception:
            pass
        finally:
            self.sid = None
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()

    def console(self):
        """The page's console messages so far (needs console_log=True), one string each."""
        try:
            entries = self.cmd("POST", "/se/log", {"type": "browser"}, timeout=30)
        except Fail:
            return []
        return [f"{e.get('level', '?')}: {e.get('message', '')}" for e in entries]


def serve(host, port):
    try:
        server = http.server.ThreadingHTTPServer((host, int(port)), functools.partial(Www, directory="www"))
    except OSError as e:
        raise Fail(f"cannot listen on {host}:{port}: {e.strerror} (set PORT to use another port)")
    print(f"Serving www/ at http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


PREFLIGHT_PAGE = b"<!doctype html><title>webgpu preflight</title>"
PREFLIGHT_SCRIPT = """
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


class PreflightPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PREFLIGHT_PAGE)))
        self.end_headers()
        self.wfile.write(PREFLIGHT_PAGE)

    def log_message(self, *args):
        pass


def preflight(driver, caps_file):
    limit_time(120, "WebGPU preflight")
    page = serve_in_background(PreflightPage)
    try:
        with Browser(driver, caps_file) as b:
            b.cmd("POST", "/timeouts", {"script": 60000})
            b.cmd("POST", "/url", {"url": f"http://127.0.0.1:{page.server_address[1]}/"})
            result = b.cmd("POST", "/execute/async", {"script": PREFLIGHT_SCRIPT, "args": []})
    finally:
        page.shutdown()
    if not isinstance(result, str) or not result.startswith("OK"):
        raise Fail(f"WebGPU is NOT available in headless Chromium with webdriver.json's flags: {result}")
    print(f"WebGPU in headless Chromium: {result[3:] or 'adapter (no info)'}")


# What bench.js keeps in window.benchResult, from line `seen` on (so each poll stays small).
BENCH_POLL = """
const r = window.benchResult;
return r ? { done: !!r.done, error: r.error ?? null, lines: r.lines.slice(arguments[0]) } : null;
"""
BENCH_POLL_SECONDS = 2
BENCH_START_SECONDS = 120  # to load the page and the wasm, before window.benchResult must exist


def bench(driver, caps_file, limit, screenshot, batch, reps, only, tiles):
    limit = int(limit)
    # The page's own limit is `limit`; this backstop catches a WebDriver call that hangs.
    limit_time(limit + 120, "browser benchmark")
    www = serve_in_background(functools.partial(QuietWww, directory="www"))
    query = urllib.parse.urlencode(
        [(k, v) for k, v in (("batch", batch), ("reps", reps), ("only", only), ("tiles", tiles)) if v],
        quote_via=urllib.parse.quote)
    url = f"http://127.0.0.1:{www.server_address[1]}/bench.html" + (f"?{query}" if query else "")
    print(f"browser: {url}", file=sys.stderr, flush=True)
    error = None
    start = time.monotonic()
    try:
        with Browser(driver, caps_file, console_log=True) as b:
            try:
                b.cmd("POST", "/timeouts", {"script": 60000, "pageLoad": BENCH_START_SECONDS * 1000})
                b.cmd("POST", "/url", {"url": url}, timeout=BENCH_START_SECONDS + 30)
                seen = 0
                while True:
                    r = b.cmd("POST", "/execute/sync", {"script": BENCH_POLL, "args": [seen]})
                    elapsed = time.monotonic() - start
                    if r is None:
                        if elapsed > BENCH_START_SECONDS:
                            error = f"bench.html did not set window.benchResult within {BENCH_START_SECONDS} s"
                            break
                    else:
                        for line in r["lines"]:
                            print(line, flush=True)
                        seen += len(r["lines"])
                        if r["error"]:
                            error = r["error"]
                            break
                        if r["done"]:
                            break
                    if elapsed > limit:
                        error = f"timed out after {limit} s (BENCH_TIMEOUT) with {seen} lines"
                        break
                    time.sleep(BENCH_POLL_SECONDS)
            except Fail as e:
                error = str(e)
            signal.alarm(0)
            if screenshot:
                try:
                    png = base64.b64decode(b.cmd("GET", "/screenshot", timeout=60))
                    with open(screenshot, "wb") as f:
                        f.write(png)
                    print(f"browser: screenshot of bench.html in {screenshot}", file=sys.stderr, flush=True)
                except (Fail, OSError) as e:
                    print(f"browser: no screenshot: {e}", file=sys.stderr, flush=True)
            if error:
                console = b.console()
                if console:
                    print("browser console (last 40 messages):", file=sys.stderr)
                    for line in console[-40:]:
                        print(f"  {line[:500]}", file=sys.stderr)
    finally:
        www.shutdown()
    if error:
        raise Fail(f"browser benchmark failed: {error}")
    print(f"browser: done in {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through the `with`/`finally` blocks that clean up


COMMANDS = {"serve": serve, "preflight": preflight, "bench": bench}
signal.signal(signal.SIGTERM, on_sigterm)
try:
    COMMANDS[sys.argv[1]](*sys.argv[2:])
except Fail as e:
    sys.exit(f"build.sh: error: {e}")
except KeyboardInterrupt:
    sys.exit(130)
PY
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
    ensure_runtime_dir
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

# ---------------------------------------------------------------------------------------------
# Kernel benchmark, natively and in the browser
# ---------------------------------------------------------------------------------------------

# Parses `bench`'s flags, the native CLI's own (--batch N --reps N --only TEXT --tiles T, also as
# --flag=VALUE), into BENCH_BATCH, BENCH_REPS, BENCH_ONLY and BENCH_TILES ("": the default).
parse_bench_args() {
    BENCH_BATCH='' BENCH_REPS='' BENCH_ONLY='' BENCH_TILES=''
    local flag value
    while [ $# -gt 0 ]; do
        case $1 in
            --*=*) flag=${1%%=*} value=${1#*=}; shift ;;
            --batch | --reps | --only | --tiles)
                [ $# -ge 2 ] || die "bench: $1 needs a value"
                flag=$1 value=$2
                shift 2
                ;;
            *) flag=$1 ;;
        esac
        case $flag in
            --batch | --reps)
                [[ $value =~ ^[1-9][0-9]*$ ]] || die "bench: $flag wants a positive integer, not '$value'"
                if [ "$flag" = --batch ]; then BENCH_BATCH=$value; else BENCH_REPS=$value; fi
                ;;
            --only) BENCH_ONLY=$value ;;
            --tiles)
                [[ $value == all || $value =~ ^[0-9]+x[0-9]+/[0-9]+x[0-9]+$ ]] ||
                    die "bench: --tiles wants TMxTN/WG_MxWG_N (e.g. 4x4/4x16) or 'all', not '$value'"
                BENCH_TILES=$value
                ;;
            *) die "bench: unknown argument '$flag' (want --batch N, --reps N, --only TEXT, --tiles TMxTN/WG_MxWG_N|all)" ;;
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

    # --foreground: Ctrl-C reaches the benchmark (`cargo run` execs it, so it is timeout's child).
    say "native: cargo run --release --bin webgan-cli -- bench ${args[*]} (time limit ${limit}s, build included)"
    timeout --foreground -k 30 "$limit" cargo run --release --bin webgan-cli -- bench "${args[@]}" || native_rc=$?
    if [ "$native_rc" -eq 124 ]; then say "native: TIMED OUT after ${limit}s (BENCH_TIMEOUT)"; fi

    driver=$(chromedriver_path)
    say "browser: www/bench.html in $(chromium --version 2>/dev/null | head -n 1 || true) via $("$driver" --version 2>/dev/null | head -n 1 | cut -d' ' -f1-2 || true) (time limit ${limit}s)"
    webgan_py bench "$driver" webdriver.json "$limit" "${BENCH_SCREENSHOT:-}" \
        "$BENCH_BATCH" "$BENCH_REPS" "$BENCH_ONLY" "$BENCH_TILES" || browser_rc=$?

    echo
    echo "native bench:  $([ "$native_rc" -eq 0 ] && echo ok || echo "FAILED (exit $native_rc)")"
    echo "browser bench: $([ "$browser_rc" -eq 0 ] && echo ok || echo "FAILED (exit $browser_rc)")"
    [ "$native_rc" -eq 0 ] && [ "$browser_rc" -eq 0 ]
}

case "${1:-build}" in
    build) build ;;
    serve) build && serve ;;
    test) run_tests ;;
    bench) shift && run_bench "$@" ;;
    deps) test_deps ;;
    -h | --help | help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
    *) die "unknown command '$1' (build, serve, test, bench, deps, help)" ;;
esac
