"""Everything of webgan that needs a web server or a browser, in one program (standard library
only), so `./build.sh serve`, the WebGPU preflight, `./build.sh bench` and the page tests share
one www/ server and one WebDriver client.

    web.py serve HOST PORT               serve www/ until Ctrl-C
    web.py preflight DRIVER CAPS         prove headless Chromium has WebGPU
    web.py bench DRIVER CAPS LIMIT SHOT BATCH REPS ONLY TILES [DETAIL]
                                         run www/bench.html, print its lines as they come;
                                         empty BATCH/REPS/ONLY/TILES: the page's default,
                                         empty SHOT: no screenshot; DETAIL 1: each training
                                         step's dispatches timed alone too
    web.py compare DRIVER CAPS LIMIT MODELS BACKENDS REPS [PROFILE]
                                         run www/tfjs/index.html (this project's step next to
                                         TensorFlow.js's), print its lines as they come; empty
                                         MODELS/BACKENDS/REPS: the page's default; PROFILE 1:
                                         TensorFlow.js's costliest kernels too
    web.py pages DRIVER CAPS SHOTS [GECKODRIVER]
                                         the page tests (page_tests.py); screenshots into SHOTS;
                                         with GECKODRIVER, the Firefox ones too
    web.py measure DRIVER CAPS STEPS [BACKENDS]
                                         the page's figures at its defaults: time to the first
                                         grid, MNIST training images/s and long main-thread tasks
                                         on each of BACKENDS (auto,webgpu,cpu)
    web.py heap DRIVER CAPS STEPS        the CPU backend's wasm heap while "Train on MNIST" runs
                                         STEPS steps on the CPU path
    web.py time-to-digits DRIVER CAPS LIMIT
                                         from "Train on MNIST" to 8+ of 10 digit classes found
                                         confident by the shipped classifier, in seconds

Browsers come from chromedriver with CAPS (webdriver.json) plus the flags
wasm-bindgen-test-runner adds, so what works here works in `./build.sh test` and vice versa.
Time limits are kept inside Python (SIGALRM), so that on a timeout, Ctrl-C or SIGTERM the
browser session is closed and chromedriver stopped instead of being left behind. Run from the
repository root (build.sh does).
"""
import base64, functools, http.server, json, signal, socket, subprocess, sys, threading, time
import urllib.error, urllib.parse, urllib.request


class Fail(Exception):
    """A failure to report as one `build.sh: error: ...` line."""


PLAIN = "/plain/"  # the page served without cross-origin isolation


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
        # Cross-origin isolation (SharedArrayBuffer), so the page's CPU worker may run wasm
        # threads, and TensorFlow.js's wasm backend its threaded build in the side-by-side
        # comparison. Everything the page loads is same-origin. Under /plain/ the same files
        # come without it: the page then trains on one thread and says why (a page test).
        if not self.path.startswith(PLAIN):
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def translate_path(self, path):
        return super().translate_path(path[len(PLAIN) - 1:] if path.startswith(PLAIN) else path)

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
    """chromedriver plus one headless Chromium session, or with `firefox` geckodriver plus one
    headless Firefox (`prefs`: its about:config settings); a context manager that always
    cleans up."""

    def __init__(self, driver, caps_file, console_log=False, firefox=False, prefs=None):
        self.driver, self.caps_file, self.console_log = driver, caps_file, console_log
        self.firefox, self.prefs = firefox, prefs or {}
        self.proc = self.sid = None

    def call(self, method, path, body=None, timeout=90):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise Fail(f"{'geckodriver' if self.firefox else 'chromedriver'} said {e.code}: {e.read().decode(errors='replace')[:2000]}")
        except OSError as e:
            raise Fail(f"chromedriver did not answer {method} {path}: {e}")

    def cmd(self, method, path, body=None, timeout=240):
        """A command in this session: `path` is relative to /session/{id}. The wait is long
        because chromedriver answers a script only when the page's main thread is free, and on
        a CPU adapter under load a reload that redraws both pretrained grids (their pipelines
        compiled afresh) once kept it busy past 90 s (autosave_offers_resume_after_reload, CI
        of 53a2240); the page itself was fine."""
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
            if self.firefox:
                caps = {"browserName": "firefox", "moz:firefoxOptions": {"args": ["-headless"], "prefs": self.prefs}}
            else:
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


def bench(driver, caps_file, limit, screenshot, batch, reps, only, tiles, detail=""):
    run_bench_page(driver, caps_file, limit, screenshot, "bench.html",
                   (("batch", batch), ("reps", reps), ("only", only), ("tiles", tiles), ("detail", detail)),
                   "browser benchmark")


def compare(driver, caps_file, limit, models, backends, reps, profile=""):
    run_bench_page(driver, caps_file, limit, "", "tfjs/index.html",
                   (("models", models), ("backends", backends), ("reps", reps), ("profile", profile)),
                   "side-by-side comparison")


def run_bench_page(driver, caps_file, limit, screenshot, page, params, what):
    """Opens www/PAGE?PARAMS (empty values left out) and prints the lines it keeps in
    window.benchResult ({ done, lines, error }) as they come; Fail on its error or a timeout."""
    limit = int(limit)
    # The page's own limit is `limit`; this backstop catches a WebDriver call that hangs.
    limit_time(limit + 120, what)
    www = serve_in_background(functools.partial(QuietWww, directory="www"))
    query = urllib.parse.urlencode([(k, v) for k, v in params if v], quote_via=urllib.parse.quote)
    url = f"http://127.0.0.1:{www.server_address[1]}/{page}" + (f"?{query}" if query else "")
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
                            error = f"{page} did not set window.benchResult within {BENCH_START_SECONDS} s"
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
                    print(f"browser: screenshot of {page} in {screenshot}", file=sys.stderr, flush=True)
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
        raise Fail(f"{what} failed: {error}")
    print(f"browser: done in {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through the `with`/`finally` blocks that clean up


def pages(driver, caps_file, shots, geckodriver=""):
    import page_tests  # beside this file; it imports this file again as `web`
    failed = page_tests.run(driver, caps_file, shots, geckodriver)
    if failed:
        raise Fail(f"{failed} page test(s) failed")


def measure(driver, caps_file, steps, backends="auto,webgpu,cpu"):
    import page_tests
    page_tests.measure(driver, caps_file, steps, backends)


def time_to_digits(driver, caps_file, limit):
    import page_tests
    if page_tests.time_to_digits(driver, caps_file, limit):
        raise Fail("no digits within the time limit")


def heap(driver, caps_file, steps):
    import page_tests
    page_tests.heap(driver, caps_file, steps)


COMMANDS = {"serve": serve, "preflight": preflight, "bench": bench, "compare": compare, "pages": pages,
            "measure": measure, "time-to-digits": time_to_digits, "heap": heap}

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except Fail as e:
        sys.exit(f"build.sh: error: {e}")
    except KeyboardInterrupt:
        sys.exit(130)
