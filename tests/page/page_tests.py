"""The page tests: www/index.html in a real headless Chromium with WebGPU (SwiftShader on a
machine without a GPU), driven through chromedriver, each test in a fresh browser profile.

What they prove (the page's promises, as a user would check them):
- it opens, and both pretrained grids render and are not blank (pixel statistics), within a
  measured and printed time from navigation;
- one click trains on the bundled MNIST: the step advances, the losses are finite, the grid
  changes;
- a folder the test writes (PNG and JPEG, a nested subfolder, a non-image file) loads through
  the folder input, is counted correctly (the non-image skipped with its reason) and trains;
- a checkpoint saved by the page loads back through the file input, at the same step, and
  training resumes from it exactly: the steps after it give the same losses as the run that
  never stopped;
- and throughout: any error the page collected (an uncaught script error, or a WebGPU
  validation or out-of-memory error that no call caught) fails the test it happened in.

Output follows libtest's format ("test page::name ... ok", "test result: ok. N passed; M
failed"), so build.sh counts these with the cargo tests. Models are kept small (CPU adapters
take seconds per step at the page's default size); the default size's speed is measured by
`./build.sh bench`.
"""
import base64, functools, gzip, json, os, re, struct, subprocess, tempfile, time, traceback, zlib

from web import Browser, Fail, QuietWww, serve_in_background

# Small models; on WebGPU unless a test says otherwise (here "auto" picks the CPU: the adapter is
# SwiftShader, a CPU emulation), so that these tests keep the WGSL kernels in the page covered.
SMALL = {"ngf": 8, "ndf": 8, "batch": 16, "every": 2, "backend": "webgpu"}

# Two small JPEGs (24x16 and 16x20, made once with Pillow): the test writes them as they are;
# Python's standard library has no JPEG encoder.
JPEGS = [
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAAQABgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDx3TNB34+T9K6qw8NoqhpAFHvXV6JoirHvZeAM10dhomcSzLuY8Ko/kPassPUoRoRnOKlKSvrsl3fXfRJbnqZRnrukmeV+MtAiOjQhIWc/aFxxgH5Wor0/xrop/seASKSfPUlF4UDa3WivWwWMoKlaSjHV9F3/AME/zv3VzxuKs7f9oPX7Mf63P//Z",
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAAUABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDzHTNB34+T9K6qw8NoqhpAFHvXV6JoirHvdeAM10dhomcSzLuY8Ko/kPauDD1KEaEZzipSkr67Jd3130SW59hlGeu6SZuaZaxfZIxt4ZgD/P8ApXSWMEf7x9o3Idq8dBnFFFfNqclShZ7RX/pMn+evqfn+TSd9z//Z",
]


def png(width, height, pixel):
    """A PNG file (8-bit RGB) whose pixel (x, y) is pixel(x, y) -> (r, g, b)."""
    rows = b"".join(b"\0" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# ---- talking to the page ---------------------------------------------------------------------

def js(b, script, *args):
    return b.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})


def state(b):
    return js(b, "return window.webgan ? JSON.parse(JSON.stringify({...window.webgan, training: {...window.webgan.training, rows: undefined, reasons: undefined}, lastCheckpoint: undefined})) : null")


def wait(b, what, predicate, limit):
    """Polls the page's state until predicate(state) holds; fails after `limit` s with the state."""
    start = time.monotonic()
    while True:
        s = state(b)
        if s and s.get("errors"):
            raise AssertionError(f"the page reported errors while waiting for {what}: {s['errors']}")
        if s and predicate(s):
            return s, time.monotonic() - start
        if s is None and time.monotonic() - start > 60:
            raise AssertionError(f"{what}: the page's script never ran (window.webgan is missing after 60 s)")
        if time.monotonic() - start > limit:
            raise AssertionError(f"{what}: not within {limit} s; page state: {json.dumps(s)[:1500]}")
        time.sleep(0.5)


def click(b, element_id):
    js(b, f"document.getElementById('{element_id}').click()")


def set_controls(b, values):
    # ...and says so, as a user's change would (the line under the controls follows it).
    js(b, """const form = document.getElementById('controls');
          for (const [k, v] of Object.entries(arguments[0])) form.elements[k].value = v;
          form.dispatchEvent(new Event('change'));""", values)


def send_file(b, element_id, path):
    el = b.cmd("POST", "/element", {"using": "css selector", "value": f"#{element_id}"})
    b.cmd("POST", f"/element/{next(iter(el.values()))}/value", {"text": path})


def pixels(b, selector):
    """(width, height, mean, std, hash) of a canvas's pixels."""
    return js(b, """
      const c = document.querySelector(arguments[0]);
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let sum = 0, sq = 0, hash = 0;
      for (let i = 0; i < d.length; i += 4) {
        const v = (d[i] + d[i + 1] + d[i + 2]) / 3;
        sum += v; sq += v * v;
        hash = (hash * 31 + d[i] * 7 + d[i + 1] * 3 + d[i + 2]) >>> 0;
      }
      const n = d.length / 4, mean = sum / n;
      return [c.width, c.height, mean, Math.sqrt(Math.max(0, sq / n - mean * mean)), hash];
    """, selector)


def cell_stats(b, selector, size, gap=2):
    """The spread of pixel values inside the 64 image cells of a grid canvas (the grey gaps left
    out): (mean std within a cell, std of the cells' means)."""
    return js(b, """
      const [sel, size, gap] = arguments;
      const c = document.querySelector(sel);
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const stds = [], means = [];
      for (let k = 0; k < 64; k++) {
        const x0 = gap + (k % 8) * (size + gap), y0 = gap + Math.floor(k / 8) * (size + gap);
        let s = 0, q = 0;
        for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
          const i = ((y0 + y) * c.width + x0 + x) * 4, v = (d[i] + d[i + 1] + d[i + 2]) / 3;
          s += v; q += v * v;
        }
        const n = size * size, m = s / n;
        means.push(m); stds.push(Math.sqrt(Math.max(0, q / n - m * m)));
      }
      const mm = means.reduce((a, b) => a + b) / 64;
      return [stds.reduce((a, b) => a + b) / 64, Math.sqrt(means.reduce((a, m) => a + (m - mm) ** 2, 0) / 64)];
    """, selector, size, gap)


def cell_difference(b, selector, size, gap=2):
    """How much the 64 image cells of a grid differ from each other: the mean absolute grey-level
    difference between each cell and the next, pixel by pixel (0 for 64 identical images)."""
    return js(b, """
      const [sel, size, gap] = arguments;
      const c = document.querySelector(sel);
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const at = (k, x, y) => {
        const i = ((gap + Math.floor(k / 8) * (size + gap) + y) * c.width + gap + (k % 8) * (size + gap) + x) * 4;
        return (d[i] + d[i + 1] + d[i + 2]) / 3;
      };
      let sum = 0;
      for (let k = 0; k < 63; k++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) sum += Math.abs(at(k, x, y) - at(k + 1, x, y));
      return sum / (63 * size * size);
    """, selector, size, gap)


def screenshot(b, path):
    with open(path, "wb") as f:
        f.write(base64.b64decode(b.cmd("GET", "/screenshot", timeout=120)))
    print(f"    screenshot: {path}")


def open_page(b, url):
    b.cmd("POST", "/timeouts", {"script": 120000, "pageLoad": 120000})
    b.cmd("POST", "/window/rect", {"width": 1280, "height": 1600})
    b.cmd("POST", "/url", {"url": url}, timeout=150)
    wait(b, "WebGPU and the wasm package", lambda s: s["webgpu"] != "pending", 120)
    s = state(b)
    assert s["webgpu"] == "ok", f"the page found no WebGPU: {s}"


def train_until(b, step, limit):
    s, secs = wait(b, f"step {step}", lambda s: s["training"]["step"] >= step and not s["training"]["running"], limit)
    t = s["training"]
    for key in ("dloss", "gloss", "dx", "dgz"):
        assert isinstance(t.get(key), (int, float)), f"{key} shown is {t.get(key)!r}, not a finite number: {t}"
    return t, secs


def two_mnist_steps(b, url):
    """Opens the page and trains a small DCGAN on MNIST for 2 steps (it pauses there and saves
    automatically); returns the page state once that save is made."""
    open_page(b, url)
    set_controls(b, {**SMALL, "steps": 2})
    click(b, "train-mnist")
    train_until(b, 2, 600)
    s, _ = wait(b, "the automatic save", lambda s: s["training"]["autosaves"] >= 1, 60)
    return s


def autosave(b):
    """The automatic save of the DCGAN run in IndexedDB: its step, data, time, length and a hash
    of its bytes. A read that fails raises instead of returning a value, so two failed reads can
    never compare equal."""
    r = b.cmd("POST", "/execute/async", {"script": """
      const done = arguments[0];
      const fail = (why) => done({ error: String(why) });
      const req = indexedDB.open('webgan', 1);
      req.onerror = () => fail('indexedDB.open: ' + req.error);
      req.onsuccess = () => {
        try {
          const g = req.result.transaction('autosave').objectStore('autosave').get('DCGAN');
          g.onsuccess = () => {
            const r = g.result;
            if (!r) return fail('no automatic save under the key DCGAN');
            const bytes = new Uint8Array(r.bytes.buffer ?? r.bytes);
            let hash = 0;
            for (let i = 0; i < bytes.length; i++) hash = (hash * 31 + bytes[i]) >>> 0;
            done({ step: r.step, data: JSON.stringify(r.data), time: r.time, length: bytes.length, hash });
          };
          g.onerror = () => fail('get: ' + g.error);
        } catch (e) { fail(e); }
      };""", "args": []}, timeout=60)
    assert isinstance(r, dict) and "error" not in r, f"reading the automatic save failed: {r}"
    return r


def no_page_errors(b):
    """Fails on any error the page collected: uncaught script errors, and GPU errors no call
    caught (validation, out of memory), which the page reads from the wasm side and shows."""
    errors = js(b, "return (async () => { await window.webgan?.drainGpuErrors?.(); return window.webgan?.errors ?? 'no window.webgan'; })()")
    assert errors == [], f"the page reported errors: {errors}"


# ---- the tests -------------------------------------------------------------------------------

def opens_and_draws_pretrained_grids(b, url, shots):
    open_page(b, url)
    s, _ = wait(b, "both pretrained grids", lambda s: all(v != "loading" for v in s["gallery"].values()), 300)
    assert s["gallery"] == {"mnist": "ready", "faces": "ready"}, f"gallery: {s['gallery']}"
    for card, size in (("mnist", 32), ("faces", 64)):
        w, h, mean, std, _ = pixels(b, f"#card-{card} canvas.grid")
        assert (w, h) == (8 * (size + 2) + 2,) * 2, f"{card} grid is {w}x{h}"
        within, between = cell_stats(b, f"#card-{card} canvas.grid", size)
        # Blank, constant or all-alike images fail here: digits and faces vary inside each image
        # and from one image to the next.
        assert within > 8 and between > 2, f"{card} grid looks blank: pixel std in a cell {within:.1f}, between cells {between:.1f}"
        print(f"    {card}: {w}x{h} grid, mean {mean:.0f}, std in a cell {within:.1f}, between cells {between:.1f}")
    for _ in range(240):
        if js(b, "return document.querySelector('#card-mnist').dataset.walk") == "ready":
            break
        time.sleep(0.5)
    time.sleep(0.5)  # a frame or two of the animation
    walk = pixels(b, "#card-mnist canvas.walk")
    assert walk[3] > 8, f"the walk animation is blank: {walk}"
    print(f"    first grid drawn {s['firstGridMs']} ms after navigation started, on the {s['firstGridEngine'].upper()}")
    # A clean visit logs no error in the console (a missing favicon.ico did once).
    severe = [line for line in b.console() if line.startswith("SEVERE")]
    assert not severe, f"console errors on a clean visit: {severe}"
    screenshot(b, os.path.join(shots, "page-open.png"))


def draws_and_trains_on_the_cpu_without_webgpu(b, url, shots):
    # A browser without WebGPU: navigator.gpu removed before any page script runs.
    b.cmd("POST", "/goog/cdp/execute", {"cmd": "Page.addScriptToEvaluateOnNewDocument",
                                        "params": {"source": "delete Navigator.prototype.gpu;"}})
    draws_and_trains_on_the_cpu(b, url, shots, "page-no-webgpu.png")


def draws_and_trains_on_the_cpu(b, url, shots, shot):
    """A page without WebGPU: says so in plain words, draws both pretrained grids on the CPU,
    and trains MNIST on the CPU path in its worker, with a live grid, losses and a score."""
    b.cmd("POST", "/timeouts", {"script": 120000, "pageLoad": 120000})
    b.cmd("POST", "/window/rect", {"width": 1280, "height": 1600})
    b.cmd("POST", "/url", {"url": url}, timeout=150)
    s, _ = wait(b, "the gallery without WebGPU", lambda s: s["webgpu"] != "pending"
                and all(v != "loading" for v in s["gallery"].values()), 300)
    assert s["webgpu"] == "unavailable", f"webgpu: {s['webgpu']}"
    message = js(b, "return document.getElementById('status').textContent")
    assert "WebGPU is not available" in message and "CPU" in message, message
    assert "not compiled in" not in message, f"wgpu's internals shown to the user: {message}"
    assert s["gallery"] == {"mnist": "ready", "faces": "ready"}, f"gallery: {s['gallery']}"
    for card, size in (("mnist", 32), ("faces", 64)):
        info = js(b, f"return document.querySelector('#card-{card} .card-info').textContent")
        assert "drawn on the CPU" in info, info
        within, between = cell_stats(b, f"#card-{card} canvas.grid", size)
        assert within > 8 and between > 2, f"{card} grid looks blank on the CPU: {within:.1f}, {between:.1f}"
    print(f"    no WebGPU: said so; both grids drawn on the CPU, first after {s['firstGridMs']} ms")

    # Training is offered, on the CPU, and says so.
    why = js(b, "return document.getElementById('backend-why').textContent")
    assert "CPU" in why and "no WebGPU" in why, why
    for control in ("train-mnist", "folder", "files", "load"):
        assert not js(b, f"return document.getElementById('{control}').disabled"), f"#{control} is disabled without WebGPU"
    # One step first, then five more: the CPU path can run all six before a test reads a grid.
    set_controls(b, {**SMALL, "backend": "auto", "steps": 1})
    clicked = time.monotonic()
    click(b, "train-mnist")
    s, _ = wait(b, "MNIST and the first grid", lambda s: s["training"]["grids"] >= 1, 180)
    print(f"    from the click on \"Train on MNIST\" to the first live grid on the CPU path: {time.monotonic() - clicked:.1f} s")
    assert s["training"]["backend"] == "cpu", s["training"]
    differ = cell_difference(b, "#runs canvas.grid", 32)
    assert differ > 3, f"the live grid's cells are alike: they differ by {differ:.2f} grey levels"
    train_until(b, 1, 300)
    before = pixels(b, "#runs canvas.grid")
    set_controls(b, {"steps": 6})
    js(b, "window.webgan.resetLongTasks()")
    click(b, "resume")
    t, secs = train_until(b, 6, 300)
    after = pixels(b, "#runs canvas.grid")
    long_tasks = js(b, "return window.webgan.longTasks")
    assert before[4] != after[4], "the sample grid did not change while training on the CPU"
    assert 0 < t["dloss"] < 20 and 0 < t["gloss"] < 50, f"losses {t['dloss']}, {t['gloss']}"
    caption = js(b, "return document.querySelector('#runs figcaption').textContent")
    assert "on the CPU" in caption, caption
    # The page is cross-origin isolated: the CPU path runs wasm threads, one per logical core.
    cores, isolated, threads = js(b, "return [navigator.hardwareConcurrency, self.crossOriginIsolated, window.webgan.cpuThreads]")
    assert isolated and threads["threads"] == cores, f"{cores} cores, isolated {isolated}, CPU path threads {threads}"
    if cores > 1:
        assert f"{cores} threads" in js(b, "return document.getElementById('backend-why').textContent")
    tasks = f"{long_tasks['count']}, longest {long_tasks['maxMs']} ms" if long_tasks else "not measurable in this browser"
    print(f"    trained on the CPU: {t['step']} steps (batch 16, widths 8) in {secs:.0f} s, {t['msPerStep']:.0f} ms/step; "
          f"main-thread tasks over 50 ms meanwhile: {tasks}")
    click(b, "score")
    s, _ = wait(b, "the quality score", lambda s: s["training"].get("score"), 300)
    assert "digits: confident" in s["training"]["score"], s["training"]["score"]
    print(f"    {s['training']['score']}")
    screenshot(b, os.path.join(shots, shot))


def one_thread_without_isolation_trains_the_same(b, url, shots):
    """The page served without cross-origin isolation (no SharedArrayBuffer) trains on one
    thread and says why; with isolation, on one thread per core. The same two steps (same seed,
    data order and z) give the same losses on both, up to the order of the threads' sums."""
    plain = url.replace("/index.html", "/plain/index.html")
    runs = {}
    for name, at in (("one thread", plain), ("threads", url)):
        open_page(b, at)
        set_controls(b, {**SMALL, "backend": "cpu", "steps": 2})
        click(b, "train-mnist")
        t, secs = train_until(b, 2, 300)
        why = js(b, "return document.getElementById('backend-why').textContent")
        threads = js(b, "return window.webgan.cpuThreads")
        runs[name] = (t, threads)
        print(f"    {name}: {threads}; {t['step']} steps in {secs:.0f} s; D loss {t['dloss']:.6f}, G loss {t['gloss']:.6f}")
        if name == "one thread":
            assert threads["threads"] == 1 and "not cross-origin isolated" in threads["why"], threads
            assert "one thread: the page is not cross-origin isolated" in why, why
    cores = js(b, "return navigator.hardwareConcurrency")
    assert runs["threads"][1]["threads"] == cores, runs["threads"][1]
    (a, _), (c, _) = runs["one thread"], runs["threads"]
    for key in ("dloss", "gloss", "dx", "dgz"):
        assert abs(a[key] - c[key]) <= 1e-4 + 1e-3 * abs(a[key]), f"{key}: one thread {a[key]}, threads {c[key]}"


def a_probe_picks_the_faster_path(b, url, shots):
    """On a GPU not known to be slow, Start first times two steps of the model on WebGPU and on
    the CPU path and trains on the faster; the verdict is kept for later visits. (This machine's
    SwiftShader is an emulation, which the page would not probe: `?probe` makes it.)"""
    probe_url = url + "?probe"
    open_page(b, probe_url)
    why = js(b, "return document.getElementById('backend-why').textContent")
    assert "times both paths" in why, why
    set_controls(b, {**SMALL, "backend": "auto", "steps": 2})
    click(b, "train-mnist")
    t, secs = train_until(b, 2, 600)
    p = t.get("probe")
    assert p and p["webgpu"] > 0 and p["cpu"] > 0, f"no probe figures: {t}"
    faster = "cpu" if p["cpu"] < p["webgpu"] else "webgpu"
    assert t["backend"] == faster, f"probe {p}, yet the run trains on {t['backend']}"
    why = js(b, "return document.getElementById('backend-why').textContent")
    where = "the CPU" if faster == "cpu" else "WebGPU"
    assert why.startswith(f"New runs train on {where}") and "a probe timed" in why, why
    print(f"    probe: WebGPU {p['webgpu']:.0f} ms/step, CPU {p['cpu']:.0f} ms/step; trained {t['step']} steps on {t['backend']} ({secs:.0f} s in all)")
    # A later visit with the same model trains where the probe said, without probing again.
    open_page(b, probe_url)
    set_controls(b, {**SMALL, "backend": "auto", "steps": 1, "channels": 1})  # as "Train on MNIST" sets it
    why = js(b, "return document.getElementById('backend-why').textContent")
    assert "a probe timed" in why, why
    click(b, "train-mnist")
    t, _ = train_until(b, 1, 300)
    assert t["backend"] == faster and "probe" not in t, f"the second visit: {t}"


def a_tuning_when_idle_carries_on_in_the_run(b, url, shots):
    """Runs start with the adapter class's default tiles; once the page sits idle the kernels
    are tuned (`?tune-after=2`: after 2 s, not 30), and a paused WebGPU run takes the new tiles
    before its next step and trains on from where it was. The tuning runs in the GPU worker and
    is kept in the page's localStorage: the next visit's device starts with it."""
    open_page(b, url + "?tune-after=2")
    assert js(b, "return window.webgan.gpuTuned") is False, "a fresh profile with a kept tuning"
    set_controls(b, {**SMALL, "steps": 2})
    click(b, "train-mnist")
    train_until(b, 2, 600)
    s, secs = wait(b, "the idle tuning", lambda s: s["training"].get("retiled") is not None, 900)
    t = s["training"]
    assert "Kernels tuned for this GPU" in t["message"], t["message"]
    print(f"    tuned {secs:.0f} s after the run paused; runs given the new tiles: {t['retiled']}; {t['message']}")
    set_controls(b, {"steps": 4})
    click(b, "resume")
    t, _ = train_until(b, 4, 600)
    assert 0 < t["dloss"] < 20 and 0 < t["gloss"] < 50, f"losses after the retiling: {t['dloss']}, {t['gloss']}"
    open_page(b, url)
    assert js(b, "return window.webgan.gpuTuned") is True, "the next visit's device did not get the tuning"


def trains_on_bundled_mnist(b, url, shots):
    open_page(b, url)
    set_controls(b, {**SMALL, "steps": 6})
    clicked = time.monotonic()
    click(b, "train-mnist")
    s, _ = wait(b, "MNIST and the first grid", lambda s: s["training"]["grids"] >= 1, 180)
    print(f"    from the click on \"Train on MNIST\" to the first live grid on WebGPU (MNIST loaded, the run built in the GPU worker): {time.monotonic() - clicked:.1f} s")
    assert s["training"]["data"]["loaded"] == 60000, f"MNIST holds {s['training']['data']}"
    assert s["training"]["backend"] == "webgpu", s["training"]
    # From the first grid on, the live grid shows 64 different images (drawn as G makes them in
    # training), not 64 flat grey squares (inference with running statistics not yet caught up).
    differ = cell_difference(b, "#runs canvas.grid", 32)
    assert differ > 3, f"the live grid's cells are alike: they differ by {differ:.2f} grey levels"
    before = pixels(b, "#runs canvas.grid")
    js(b, "window.webgan.resetLongTasks()")
    t, secs = train_until(b, 6, 600)
    after = pixels(b, "#runs canvas.grid")
    long_tasks = js(b, "return window.webgan.longTasks")
    assert t["grids"] >= 3, f"grids drawn: {t['grids']}"
    assert before[4] != after[4], "the sample grid did not change while training"
    assert 0 < t["dloss"] < 20 and 0 < t["gloss"] < 50, f"losses {t['dloss']}, {t['gloss']}"
    print(f"    {t['step']} steps (batch 16, widths 8) in {secs:.0f} s: {t['ips']:.1f} images/s, D loss {t['dloss']:.3f}, G loss {t['gloss']:.3f}; "
          f"the first live grid's cells differ by {differ:.1f} grey levels")
    # WebGPU runs in its worker: the page's thread only shows what comes back.
    print(f"    main-thread tasks over 50 ms while training on WebGPU: {long_tasks['count']}, longest {long_tasks['maxMs']} ms")
    click(b, "score")
    s, _ = wait(b, "the quality score", lambda s: s["training"].get("score"), 300)
    mean = float(s["training"]["score"].split("mean ")[1].split()[0])
    # Six steps in, G draws blobs: far from MNIST (two sets of 256 real digits score about 17,
    # the shipped generator about 15).
    assert mean > 50, s["training"]["score"]
    # ...and the digit coverage, by the shipped classifier run in the page.
    assert "digits: confident" in s["training"]["score"] and "classes present" in s["training"]["score"], s["training"]["score"]
    # And what the unconfident digits are (six steps in, the blobs may all read as one digit).
    assert re.search(r"; (none unconfident|\d+ unconfident, \d+ of them between two classes .*most often \d/\d \d+)$",
                     s["training"]["score"]), s["training"]["score"]
    print(f"    {s['training']['score']}")
    screenshot(b, os.path.join(shots, "page-trained.png"))


def mnist_is_padded_as_the_native_loader_pads_it(b, url, shots):
    """The page's MNIST (gunzipped by the browser, padded in chunks in JavaScript) against the
    file read here with Python's gzip: 60,000 images of 32x32 (and of 36x36, an odd margin),
    each 28x28 digit at the native loader's offset, the margin black."""
    open_page(b, url)
    with gzip.open("www/data/mnist/train-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    count, rows, cols = struct.unpack(">III", raw[4:16])
    for size in (32, 36):
        got = b.cmd("POST", "/execute/async", {"script": """
          const [size, done] = arguments;
          Promise.all([import('./data.js'), import('./pkg/webgan.js')]).then(async ([data, wasm]) => {
            const d = await data.loadMnist(wasm, size);
            const px = d.pixels(0, d.len());
            const plane = size * size, picked = [0, 1, 30000, d.len() - 1];
            let sum = 0;
            for (const v of px) sum += v;
            done({ len: d.len(), sum, images: picked.map((i) => Array.from(px.subarray(i * plane, (i + 1) * plane))) });
            d.free();
          }).catch((e) => done({ error: String(e) }));""", "args": [size]}, timeout=240)
        assert "error" not in got, got
        assert got["len"] == count == 60000 and got["sum"] == sum(raw[16:]), f"{got['len']} images, pixel sum {got['sum']}"
        top, left = (size - rows) // 2, (size - cols) // 2
        for i, image in zip([0, 1, 30000, count - 1], got["images"]):
            want = bytearray(size * size)
            for r in range(rows):
                at = 16 + (i * rows + r) * cols
                want[(top + r) * size + left:(top + r) * size + left + cols] = raw[at:at + cols]
            assert bytes(image) == bytes(want), f"image {i} at {size}x{size} is not MNIST's digit padded by ({top}, {left})"
    print(f"    {count} digits at 32x32 and 36x36: pixel sums and four images each equal Python's padding")


def loads_a_folder_through_the_file_input(b, url, shots):
    root = tempfile.mkdtemp(prefix="webgan-page-")
    folder = os.path.join(root, "pictures")
    os.makedirs(os.path.join(folder, "nested", "deeper"))
    files = {
        "a.png": png(40, 30, lambda x, y: (x * 6, y * 8, 128)),
        "b.png": png(17, 23, lambda x, y: (255 * ((x // 4 + y // 4) % 2),) * 3),
        "nested/c.png": png(64, 64, lambda x, y: (200, x * 4, 255 - y * 4)),
        "nested/d.jpg": base64.b64decode(JPEGS[0]),
        "nested/deeper/e.jpg": base64.b64decode(JPEGS[1]),
        "notes.txt": b"not an image\n",
    }
    for name, data in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    open_page(b, url)
    set_controls(b, {**SMALL, "batch": 4, "size": 32, "channels": 3, "steps": 3})
    send_file(b, "folder", folder)
    s, _ = wait(b, "the folder to load", lambda s: (s["training"].get("data") or {}).get("source") == "folder"
                and s["training"]["data"]["loaded"] + s["training"]["data"]["skipped"] == s["training"]["data"]["total"], 120)
    d = s["training"]["data"]
    assert (d["total"], d["loaded"], d["skipped"]) == (6, 5, 1), f"folder counted as {d}"
    reasons = js(b, "return window.webgan.training.data.reasons")
    assert len(reasons) == 1 and reasons[0]["path"].endswith("notes.txt"), f"skipped: {reasons}"
    print(f"    6 files: 5 images, 1 skipped ({reasons[0]['path']}: {reasons[0]['reason']})")
    click(b, "start")
    t, secs = train_until(b, 3, 300)
    print(f"    trained {t['step']} steps on them in {secs:.0f} s")


def save_checkpoint(b, path):
    """Clicks "Save checkpoint", writes the bytes the page saved to `path`; returns their step."""
    js(b, "window.webgan.lastCheckpoint = null")  # an earlier save's bytes are not this one's
    click(b, "save")
    saved = b.cmd("POST", "/execute/async", {"script": """
      const done = arguments[0];
      const poll = () => {
        const c = window.webgan.lastCheckpoint;
        if (!c) return setTimeout(poll, 200);
        let s = '';
        for (let i = 0; i < c.bytes.length; i += 0x8000) s += String.fromCharCode(...c.bytes.subarray(i, i + 0x8000));
        done({ step: c.step, b64: btoa(s) });
      };
      poll();""", "args": []}, timeout=180)
    with open(path, "wb") as f:
        f.write(base64.b64decode(saved["b64"]))
    return saved["step"]


def cdp_drop(b, paths):
    """A real drag and drop of files or folders (their paths) onto the drop zone, through the
    DevTools protocol's Input.dispatchDragEvent: the browser builds the DataTransfer itself, with
    directory entries for folders, as when a person drags them from a file manager."""
    x, y = js(b, "const r = document.getElementById('dropzone').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]")
    data = {"items": [], "files": paths, "dragOperationsMask": 1}
    js(b, "if (window.webgan.training.data) window.webgan.training.data.before = true")
    for kind in ("dragEnter", "dragOver", "drop"):
        b.cmd("POST", "/goog/cdp/execute", {"cmd": "Input.dispatchDragEvent", "params": {"type": kind, "x": x, "y": y, "data": data}})
    s, _ = wait(b, "the dropped files to load", lambda s: s["training"].get("data") and "before" not in s["training"]["data"]
                and s["training"]["data"]["loaded"] + s["training"]["data"]["skipped"] == s["training"]["data"]["total"], 120)
    return s["training"]["data"]


def drops_a_folder_and_trains_64x64_rgb(b, url, shots):
    # A folder with nested subfolders, RGB images of several sizes and aspect ratios (centre-
    # cropped to squares), and one file that is not an image.
    folder = os.path.join(tempfile.mkdtemp(prefix="webgan-drop-"), "faces")
    os.makedirs(os.path.join(folder, "set1", "closeups"))
    os.makedirs(os.path.join(folder, "set2"))
    where = [folder, os.path.join(folder, "set1"), os.path.join(folder, "set1", "closeups"), os.path.join(folder, "set2")]
    for i in range(12):
        w, h = [(64, 64), (90, 70), (48, 80), (128, 128)][i % 4]
        face = lambda x, y, i=i, w=w, h=h: (  # a warm blob on a coloured background
            (180 + i * 5) % 256 if (x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2 else (x * 3 + i * 20) % 256,
            (120 + y) % 256, (60 + i * 15 + x) % 256)
        with open(os.path.join(where[i % 4], f"face_{i:02}.png"), "wb") as f:
            f.write(png(w, h, face))
    with open(os.path.join(folder, "set2", "readme.txt"), "wb") as f:
        f.write(b"these are not faces\n")
    open_page(b, url)
    set_controls(b, {**SMALL, "backend": "auto", "batch": 4, "size": 64, "channels": 3, "steps": 1, "every": 1})
    d = cdp_drop(b, [folder])
    assert (d["total"], d["loaded"], d["skipped"]) == (13, 12, 1), f"the dropped folder counted as {d}"
    assert d["reasons"][0]["path"].endswith("readme.txt") and d["reasons"][0]["reason"].startswith("not an image"), d["reasons"]
    text = js(b, "return document.getElementById('data-text').textContent")
    assert text.startswith("faces: 12 images (RGB 64×64), 1 skipped"), text
    print(f"    dropped folder: {text}")

    # 64x64 RGB training: a live grid that changes and is not flat, a score, a checkpoint.
    # One step, then two more (the CPU path may run all three before a test reads a grid).
    click(b, "start")
    train_until(b, 1, 300)
    before = pixels(b, "#runs canvas.grid")
    assert before[:2] == [8 * 66 + 2] * 2, f"a 64x64 grid of {before[:2]}"
    set_controls(b, {"steps": 3})
    click(b, "resume")
    t, secs = train_until(b, 3, 600)
    after = pixels(b, "#runs canvas.grid")
    differ = cell_difference(b, "#runs canvas.grid", 64)
    assert before[4] != after[4], "the 64x64 grid did not change while training"
    assert differ > 3, f"the 64x64 live grid's cells are alike: they differ by {differ:.2f} levels"
    click(b, "score")
    s, _ = wait(b, "the quality score", lambda s: s["training"].get("score"), 300)
    score = s["training"]["score"]
    assert "64px" in score and "digits" not in score, score
    path = os.path.join(os.path.dirname(folder), "faces.safetensors")
    save_checkpoint(b, path)
    click(b, "reset")
    send_file(b, "load", path)
    s, _ = wait(b, "the checkpoint to load", lambda s: s["training"]["message"].startswith(("Loaded", "faces.safetensors")), 120)
    assert s["training"]["message"].startswith("Loaded") and s["training"]["step"] == 3, s["training"]
    print(f"    64x64 RGB on {t['backend']}: {t['step']} steps in {secs:.0f} s, cells differ by {differ:.1f} levels; "
          f"{score}; saved and loaded back at step 3")

    # Loose files dropped the same way: the data set is named by its count.
    d = cdp_drop(b, [os.path.join(where[1], n) for n in sorted(os.listdir(where[1])) if n.endswith(".png")])
    text = js(b, "return document.getElementById('data-text').textContent")
    assert d["loaded"] == 3 and text.startswith("3 files: 3 images"), text
    screenshot(b, os.path.join(shots, "page-dropped-faces.png"))


def loose_files_are_named_by_count_grey_is_proposed_and_pause_says_paused(b, url, shots):
    # Loose images (no folder), picked through the "images" input and dropped on the box: the
    # data set is "3 files", not the first file's name.
    root = tempfile.mkdtemp(prefix="webgan-loose-")
    paths = []
    for i in range(3):
        paths.append(os.path.join(root, f"img_{i}.png"))
        with open(paths[-1], "wb") as f:
            f.write(png(20 + i, 20, lambda x, y: (x * 9, y * 9, 60 * i)))
    open_page(b, url)
    set_controls(b, {**SMALL, "batch": 2, "size": 32, "channels": 3, "steps": 1000})
    send_file(b, "files", "\n".join(paths))
    s, _ = wait(b, "the files to load", lambda s: (s["training"].get("data") or {}).get("loaded") == 3, 120)
    text = js(b, "return document.getElementById('data-text').textContent")
    assert text.startswith("3 files: 3 images"), text
    # The same loose files dropped on the box (a synthetic drop: File objects in a DataTransfer).
    drop_files(b, [open(p, "rb").read() for p in paths])
    dropped = js(b, "return document.getElementById('data-text').textContent")
    assert dropped.startswith("3 files: 3 images"), dropped
    assert js(b, "return document.getElementById('grey-proposal').hidden"), "grey proposed for colour images"
    # Grey images (here saved as RGB): the page proposes grey, and one click reloads them so.
    drop_files(b, [png(20, 20, lambda x, y, i=i: ((x * 9 + y * 3 + i * 40) % 256,) * 3) for i in range(3)])
    assert not js(b, "return document.getElementById('grey-proposal').hidden"), "grey images, and no grey proposed"
    click(b, "use-grey")
    wait(b, "the images again in grey", lambda s: "grey 32×32" in js(b, "return document.getElementById('data-text').textContent"), 120)
    assert js(b, "return document.getElementById('controls').elements.channels.value") == "1"
    assert js(b, "return document.getElementById('grey-proposal').hidden"), "grey still proposed after switching"
    # Pause ends in a paused status that says where, not in "Pausing...".
    click(b, "start")
    wait(b, "the first step", lambda s: s["training"]["step"] >= 1, 300)
    click(b, "pause")
    s, _ = wait(b, "the pause", lambda s: not s["training"]["running"] and not s["training"]["message"].startswith("Pausing"), 120)
    message = s["training"]["message"]
    assert message == f"Paused at step {s['training']['step']}. Resume continues exactly from here.", message
    print(f"    picked and dropped loose files named {dropped.split(':')[0]!r}; grey images proposed grey; paused: {message!r}")


def drop_files(b, blobs):
    """Drops files (bytes each, named dropped_i.png) on the drop zone, as a synthetic drop of File
    objects in a DataTransfer, and waits until the page has loaded them."""
    js(b, """
      window.webgan.training.data.before = true; // gone once the drop's data replaces it
      const dt = new DataTransfer();
      arguments[0].forEach((b64, i) => dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))],
                                                        `dropped_${i}.png`, { type: 'image/png' })));
      document.getElementById('dropzone').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    """, [base64.b64encode(blob).decode() for blob in blobs])
    wait(b, "the dropped files", lambda s: "before" not in (s["training"].get("data") or {"before": 1}), 120)


def checkpoint_round_trip(b, url, shots):
    two_mnist_steps(b, url)
    path = os.path.join(tempfile.mkdtemp(prefix="webgan-ckpt-"), "page.safetensors")
    step = save_checkpoint(b, path)
    assert step == 2, f"saved at step {step}"
    # The run that never stopped: two more steps.
    set_controls(b, {"steps": 4})
    click(b, "resume")
    train_until(b, 4, 600)
    straight = js(b, "return window.webgan.training.rows.filter(r => r.step > 2)")
    # A file that is not a checkpoint is refused with the reason, and the model stays.
    bad = os.path.join(os.path.dirname(path), "truncated.safetensors")
    with open(bad, "wb") as f:
        f.write(open(path, "rb").read()[:5000])
    send_file(b, "load", bad)
    s, _ = wait(b, "the refusal", lambda s: "truncated.safetensors" in s["training"]["message"], 60)
    assert "was not loaded" in s["training"]["message"] and s["training"]["step"] == 4, s["training"]
    assert js(b, "return document.querySelectorAll('#runs figure').length") == 1
    print(f"    refused: {s['training']['message']}")
    # Back to step 2 from the file, then the same two steps again.
    click(b, "reset")
    send_file(b, "load", path)
    s, _ = wait(b, "the checkpoint to load", lambda s: s["training"]["message"].startswith(("Loaded", "page.safetensors")), 120)
    assert s["training"]["message"].startswith("Loaded"), s["training"]["message"]
    assert s["training"]["step"] == 2, f"loaded at step {s['training']['step']}"
    click(b, "resume")
    train_until(b, 4, 600)
    resumed = js(b, "return window.webgan.training.rows.filter(r => r.step > 2)")
    assert [r["step"] for r in resumed] == [r["step"] for r in straight] == [3, 4], f"{straight} / {resumed}"
    for a, r in zip(straight, resumed):
        for key in ("dloss", "gloss", "dx", "dgz"):
            assert abs(a[key] - r[key]) <= 1e-5 * max(1, abs(a[key])), f"step {a['step']} {key}: {a[key]} straight, {r[key]} resumed"
    print(f"    saved at step 2 ({os.path.getsize(path) / 1e6:.1f} MB), loaded, resumed: steps 3-4 match the uninterrupted run")
    # The same file on the other backend: loaded into a run on the CPU path, the same two steps
    # agree with WebGPU's within the step tests' tolerance (different summation orders).
    set_controls(b, {"backend": "cpu"})
    click(b, "reset")
    send_file(b, "load", path)
    s, _ = wait(b, "the checkpoint to load on the CPU", lambda s: s["training"]["message"].startswith("Loaded"), 120)
    assert s["training"]["backend"] == "cpu" and s["training"]["step"] == 2, s["training"]
    click(b, "resume")
    train_until(b, 4, 600)
    on_cpu = js(b, "return window.webgan.training.rows.filter(r => r.step > 2)")
    assert [r["step"] for r in on_cpu] == [3, 4], on_cpu
    for a, r in zip(straight, on_cpu):
        for key in ("dloss", "gloss", "dx", "dgz"):
            assert abs(a[key] - r[key]) <= 2e-5 + 1e-3 * abs(a[key]), f"step {a['step']} {key}: {a[key]} on WebGPU, {r[key]} on the CPU"
    print("    the WebGPU run's checkpoint resumed on the CPU path: steps 3-4 agree with WebGPU's")


def the_moving_average_is_drawn_and_saved(b, url, shots):
    """With "G's moving average" set, the live grid draws the average (not G as it trains), the
    caption says so, and a saved checkpoint holds the average and loads back with the setting."""
    open_page(b, url)

    def three_steps(ema):
        saves = js(b, "return window.webgan.training.autosaves")
        set_controls(b, {**SMALL, "backend": "cpu", "steps": 3, "ema": ema})
        js(b, "window.webgan.training.step = 0")
        click(b, "train-mnist")
        train_until(b, 3, 300)
        wait(b, "the last grid and the save", lambda s: s["training"]["autosaves"] > saves, 120)
        return pixels(b, "#runs canvas.grid")[4]

    # The same seed trains the same G: without the average, two runs draw the same grid.
    plain = three_steps(0)
    assert three_steps(0) == plain, "two runs of the same seed drew different grids: nothing can be compared"
    averaged = three_steps(0.5)
    assert averaged != plain, "with the moving average on, the grid is G's own"
    differ = cell_difference(b, "#runs canvas.grid", 32)
    assert differ > 3, f"the average's grid cells are alike: they differ by {differ:.2f} grey levels"
    caption = js(b, "return document.querySelector('#runs figcaption').textContent")
    assert "moving average (decay 0.5)" in caption, caption

    path = os.path.join(tempfile.mkdtemp(prefix="webgan-ema-"), "ema.safetensors")
    assert save_checkpoint(b, path) == 3
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    averages = [k for k in header if k.endswith(".ema")]
    assert averages and header["__metadata__"].get("ema") == "0.5", f"{averages}, {header.get('__metadata__')}"
    set_controls(b, {"ema": 0})
    click(b, "reset")
    send_file(b, "load", path)
    s, _ = wait(b, "the checkpoint to load", lambda s: s["training"]["message"].startswith(("Loaded", "ema.safetensors")), 120)
    assert s["training"]["message"].startswith("Loaded"), s["training"]["message"]
    assert js(b, "return document.getElementById('controls').elements.ema.value") == "0.5"
    print(f"    the grid differs from G's own after 3 steps; {len(averages)} average tensors saved; loaded back with decay 0.5")


def a_pytorch_checkpoint_round_trip(b, url, shots):
    """The page's checkpoint trains a step in PyTorch (python/webgan_torch) and comes back: the
    page loads PyTorch's file (which has no webgan run state), trains on from its step, and
    PyTorch reads the page's next save."""
    py = os.environ.get("WEBGAN_PYTHON")
    assert py, "WEBGAN_PYTHON must name PyTorch's Python (./build.sh pages and test set it)"
    interop = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch", "interop.py")
    torch_py = lambda *args: subprocess.run([py, interop, *args], check=True, capture_output=True, text=True).stdout.strip()
    two_mnist_steps(b, url)
    folder = tempfile.mkdtemp(prefix="webgan-torch-")
    page, torch_file, again = (os.path.join(folder, n) for n in ("page.safetensors", "torch.safetensors", "again.safetensors"))
    assert save_checkpoint(b, page) == 2
    print(f"    {torch_py('train-one', page, torch_file)}")
    click(b, "reset")
    send_file(b, "load", torch_file)
    s, _ = wait(b, "PyTorch's checkpoint to load", lambda s: s["training"]["message"].startswith(("Loaded", "torch.safetensors")), 120)
    assert s["training"]["message"].startswith("Loaded") and s["training"]["step"] == 3, s["training"]
    set_controls(b, {"steps": 5})
    click(b, "resume")
    t, _ = train_until(b, 5, 600)
    assert 0 < t["dloss"] < 20 and 0 < t["gloss"] < 50, f"losses {t['dloss']}, {t['gloss']}"
    assert save_checkpoint(b, again) == 5
    back = torch_py("step-of", again)
    assert back.startswith("step 5;") and "sampler" in back, back
    print(f"    the page loaded it at step 3, trained to step 5 (D loss {t['dloss']:.3f}); PyTorch reads the page's save: {back}")


def autosave_offers_resume_after_reload(b, url, shots):
    first = two_mnist_steps(b, url)
    # A new visit in the same browser profile: the save is offered, and resumes at its step.
    b.cmd("POST", "/url", {"url": url}, timeout=150)
    wait(b, "WebGPU and the wasm package", lambda s: s["webgpu"] == "ok", 120)
    # Its first grid comes as on the first visit: from the CPU path, which no kernel tuning
    # or shader compile stands in front of (a returning visit once took 118 s against 27 s).
    again, _ = wait(b, "the pretrained grids after the reload", lambda s: all(v != "loading" for v in s["gallery"].values()), 300)
    for visit in (first, again):
        assert visit["firstGridEngine"] == "cpu", f"a first grid drawn on {visit['firstGridEngine']}"
    print(f"    first grid {first['firstGridMs']} ms after navigation on the first visit, {again['firstGridMs']} ms on the return")
    screenshot(b, os.path.join(shots, "page-returning.png"))
    offer = None
    for _ in range(60):
        offer = js(b, "const e = document.getElementById('resume-autosave'); return e.hidden ? null : e.textContent")
        if offer:
            break
        time.sleep(0.5)
    assert offer and "step 2 on MNIST" in offer, f"after a reload the page offers: {offer!r}"
    set_controls(b, {**SMALL, "steps": 3})
    click(b, "resume-autosave")
    t, _ = train_until(b, 3, 600)
    assert t["step"] == 3, t
    print(f"    reloaded; offered {offer!r}; resumed to step 3")
    # A new run replaces the automatic save: the offer of the older one goes.
    b.cmd("POST", "/url", {"url": url}, timeout=150)
    wait(b, "WebGPU and the wasm package", lambda s: s["webgpu"] == "ok", 120)
    for _ in range(60):
        if not js(b, "return document.getElementById('resume-autosave').hidden"):
            break
        time.sleep(0.5)
    set_controls(b, {**SMALL, "steps": 1})
    click(b, "train-mnist")
    train_until(b, 1, 600)
    assert js(b, "return document.getElementById('resume-autosave').hidden"), "the older save is still offered"
    print("    a new run: the offer of the older save is withdrawn")


def survives_a_lost_gpu(b, url, shots):
    s = two_mnist_steps(b, url)
    saved = s["training"]["autosaveStep"]
    set_controls(b, {"steps": 1000})
    click(b, "resume")
    wait(b, "training to go on", lambda s: s["training"]["step"] > saved, 300)
    js(b, "window.webgan.debug.loseGpu()")  # as a driver reset would
    s, _ = wait(b, "the loss to be noticed", lambda s: s["training"].get("lost") and not s["training"]["running"], 120)
    message = s["training"]["message"]
    assert "lost" in message and f"step {saved}" in message and "intact" in message, message
    kept = autosave(b)["step"]
    assert kept == saved, f"the automatic save moved from step {saved} to {kept}"
    click(b, "reconnect")
    s, _ = wait(b, "a new device and the save", lambda s: "new GPU device" in s["training"]["message"], 300)
    assert s["training"]["step"] == saved and not s["training"].get("lost"), s["training"]
    set_controls(b, {"steps": saved + 1})
    click(b, "resume")
    t, _ = train_until(b, saved + 1, 300)
    print(f"    lost the device at step > {saved}: {message!r}; reopened, resumed from step {saved} to {t['step']}")


def a_lost_gpu_leaves_cpu_runs_training(b, url, shots):
    # A run on the CPU path has nothing on the GPU: losing the device must not stop it.
    open_page(b, url)
    set_controls(b, {**SMALL, "backend": "cpu", "steps": 1000})
    click(b, "train-mnist")
    s, _ = wait(b, "the first steps on the CPU", lambda s: s["training"]["step"] >= 2, 300)
    assert s["training"]["backend"] == "cpu", s["training"]
    js(b, "window.webgan.debug.loseGpu()")
    s, _ = wait(b, "the loss to be noticed", lambda s: s["training"].get("gpuLost"), 60)
    step = s["training"]["step"]
    s, _ = wait(b, "more steps after the loss", lambda s: s["training"]["step"] >= step + 3, 300)
    assert s["training"]["running"] and not s["training"].get("lost"), s["training"]
    why = js(b, "return document.getElementById('backend-why').textContent")
    assert "lost" in why and "CPU" in why, why
    assert js(b, "return document.getElementById('reconnect').hidden"), "a reconnect offered for a run that needs no GPU"
    print(f"    GPU lost at step {step} ({s['training']['gpuLost']}); the CPU run went on to step {s['training']['step']}; {why!r}")


def a_lost_gpu_leaves_the_gallery_drawing(b, url, shots):
    """On a real GPU the gallery draws on WebGPU after its first grid (`?gallery-on-gpu`: here,
    on SwiftShader too). Once the device is lost, Re-roll still draws: on the CPU path, and the
    card says so."""
    open_page(b, url + "?gallery-on-gpu")
    info = "document.querySelector('#card-mnist .card-info').textContent"
    for _ in range(600):
        if js(b, "return document.getElementById('card-mnist').dataset.walk") == "ready":
            break
        time.sleep(0.5)
    assert "drawn on the GPU" in js(b, f"return {info}"), js(b, f"return {info}")
    before = pixels(b, "#card-mnist canvas.grid")
    js(b, "window.webgan.debug.loseGpu()")
    wait(b, "the loss to be noticed", lambda s: s["training"].get("gpuLost"), 60)
    js(b, "document.querySelector('#card-mnist .reroll').click()")
    for _ in range(240):
        text = js(b, f"return {info}")
        if "drawn on the CPU" in text and not js(b, "return document.querySelector('#card-mnist .reroll').disabled"):
            break
        time.sleep(0.5)
    assert "drawn on the CPU" in text and "error" not in text, text
    after = pixels(b, "#card-mnist canvas.grid")
    assert after[4] != before[4], "Re-roll drew nothing after the loss"
    within, between = cell_stats(b, "#card-mnist canvas.grid", 32)
    assert within > 8 and between > 2, f"the grid after the loss looks blank: {within:.1f}, {between:.1f}"
    print(f"    the device lost, Re-roll drew on the CPU: {text.splitlines()[-1]}")


def divergence_restores_the_last_good_state(b, url, shots):
    two_mnist_steps(b, url)
    # A new model with an absurd learning rate: its weights overflow within a few steps.
    click(b, "reset")
    set_controls(b, {"lr": "1e30", "steps": 50})
    click(b, "start")
    s, _ = wait(b, "the divergence to be caught", lambda s: s["training"].get("diverged") and not s["training"]["running"]
                and "restored" in s["training"]["message"], 600)
    t = s["training"]
    assert "diverged" in t["message"] and "step 2" in t["message"] and t["step"] == 2, t
    assert js(b, "return document.getElementById('controls').elements['lr'].value") == "0.0002"
    print(f"    {t['message']}")
    set_controls(b, {"steps": 3})
    click(b, "resume")
    t, _ = train_until(b, 3, 300)
    print(f"    resumed from the restored state to step {t['step']} with finite losses")


TESTS = [opens_and_draws_pretrained_grids, draws_and_trains_on_the_cpu_without_webgpu, one_thread_without_isolation_trains_the_same, a_probe_picks_the_faster_path, a_tuning_when_idle_carries_on_in_the_run, trains_on_bundled_mnist, mnist_is_padded_as_the_native_loader_pads_it, loads_a_folder_through_the_file_input, drops_a_folder_and_trains_64x64_rgb, loose_files_are_named_by_count_grey_is_proposed_and_pause_says_paused, checkpoint_round_trip, the_moving_average_is_drawn_and_saved, a_pytorch_checkpoint_round_trip, autosave_offers_resume_after_reload, survives_a_lost_gpu, a_lost_gpu_leaves_cpu_runs_training, a_lost_gpu_leaves_the_gallery_drawing, divergence_restores_the_last_good_state]


# ---- Firefox (geckodriver) -----------------------------------------------------------------

def firefox_draws_and_trains_on_the_cpu(b, url, shots):
    # Firefox as shipped on Linux: no WebGPU.
    draws_and_trains_on_the_cpu(b, url, shots, "page-firefox.png")


def firefox_trains_on_its_own_webgpu(b, url, shots):
    # Firefox's own WebGPU implementation (dom.webgpu.enabled), here on lavapipe: the page's
    # WGSL kernels train there too when asked to.
    b.cmd("POST", "/timeouts", {"script": 120000, "pageLoad": 120000})
    b.cmd("POST", "/url", {"url": url}, timeout=150)
    s, _ = wait(b, "WebGPU and the wasm package", lambda s: s["webgpu"] != "pending", 120)
    assert s["webgpu"] == "ok", f"Firefox with dom.webgpu.enabled found no WebGPU: {s}"
    set_controls(b, {**SMALL, "steps": 2})
    click(b, "train-mnist")
    s, _ = wait(b, "MNIST and the first grid", lambda s: s["training"]["grids"] >= 1, 600)
    assert s["training"]["backend"] == "webgpu", s["training"]
    t, secs = train_until(b, 2, 900)
    assert 0 < t["dloss"] < 20 and 0 < t["gloss"] < 50, f"losses {t['dloss']}, {t['gloss']}"
    differ = cell_difference(b, "#runs canvas.grid", 32)
    assert differ > 3, f"the live grid's cells are alike: they differ by {differ:.2f} grey levels"
    status = js(b, "return document.getElementById('status').textContent")
    print(f"    Firefox's WebGPU ({status}): {t['step']} steps in {secs:.0f} s, D loss {t['dloss']:.3f}, G loss {t['gloss']:.3f}")


# (test, about:config settings)
FIREFOX_TESTS = [(firefox_draws_and_trains_on_the_cpu, {}),
                 (firefox_trains_on_its_own_webgpu, {"dom.webgpu.enabled": True, "gfx.webgpu.ignore-blocklist": True})]


def run(driver, caps_file, shots, geckodriver=""):
    only = os.environ.get("PAGE_TESTS", "")
    os.makedirs(shots, exist_ok=True)
    www = serve_in_background(functools.partial(QuietWww, directory="www"))
    url = f"http://127.0.0.1:{www.server_address[1]}/index.html"
    passed = failed = 0
    import robustness_tests  # bad folders; it uses this module's helpers
    # (test, Browser arguments): Chromium's, then Firefox's when there is a geckodriver.
    tests = [(t, {}) for t in TESTS + robustness_tests.TESTS]
    if geckodriver:
        tests += [(t, {"driver": geckodriver, "firefox": True, "prefs": prefs}) for t, prefs in FIREFOX_TESTS]
    tests = [(t, how) for t, how in tests if only in t.__name__]
    print(f"\nrunning {len(tests)} page tests against {url}", flush=True)
    try:
        for test, how in tests:
            start = time.monotonic()
            with Browser(how.pop("driver", driver), caps_file, console_log=True, **how) as b:
                try:
                    test(b, url, shots)
                    no_page_errors(b)
                    passed += 1
                    print(f"test page::{test.__name__} ... ok ({time.monotonic() - start:.0f} s)", flush=True)
                except (AssertionError, Fail) as e:
                    failed += 1
                    print(f"test page::{test.__name__} ... FAILED ({time.monotonic() - start:.0f} s)\n    {e}", flush=True)
                    for line in b.console()[-20:]:
                        print(f"    console: {line[:400]}")
                    try:
                        screenshot(b, os.path.join(shots, f"failed-{test.__name__}.png"))
                    except Exception:
                        pass
                except Exception:
                    failed += 1
                    print(f"test page::{test.__name__} ... FAILED\n{traceback.format_exc()}", flush=True)
    finally:
        www.shutdown()
    print(f"\ntest result: {'ok' if failed == 0 else 'FAILED'}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out")
    return failed


def measure(driver, caps_file, steps, backends="auto,webgpu,cpu"):
    """Not a test: the page's own figures at its default settings. Time from navigation to the
    first pretrained grid, then one-click MNIST training (DCGAN, widths 32, batch 64) for
    `steps` steps: images/s and ms/step as the page shows them."""
    www = serve_in_background(functools.partial(QuietWww, directory="www"))
    url = f"http://127.0.0.1:{www.server_address[1]}/index.html"
    try:
        with Browser(driver, caps_file) as b:
            open_page(b, url)
            s, _ = wait(b, "the pretrained grids", lambda s: all(v != "loading" for v in s["gallery"].values()), 300)
            print(f"first pretrained grid: {s['firstGridMs']} ms after navigation; gallery {s['gallery']}")
            print("grid draw times (ms):", js(b, "return [...document.querySelectorAll('#gallery .card')].map(c => c.id + ' ' + c.dataset.ms).join(', ')"))
            print("adapter:", js(b, "return document.getElementById('status').textContent"))
            for backend in backends.split(","):
                set_controls(b, {"steps": int(steps), "every": 1000, "backend": backend})
                js(b, "window.webgan.training.step = 0")  # the last backend's run counted to `steps`
                saves = js(b, "return window.webgan.training.autosaves")
                js(b, "window.webgan.resetLongTasks()")
                clicked = time.monotonic()
                click(b, "train-mnist")
                wait(b, "the first step", lambda s: s["training"]["step"] >= 1, 3600)
                starting = js(b, "return window.webgan.longTasks")
                print(f"from the click to step 1 (the data loaded, the run built): {time.monotonic() - clicked:.1f} s; "
                      f"main-thread tasks over 50 ms meanwhile: {starting['count']}, longest {starting['maxMs']} ms")
                js(b, "window.webgan.resetLongTasks()")
                t, secs = train_until(b, int(steps), 3600)
                # The run ends with its last grid and an automatic save (10 MB into IndexedDB).
                wait(b, "the automatic save at the end", lambda s: s["training"]["autosaves"] > saves, 600)
                long_tasks = js(b, "return window.webgan.longTasks")
                print(f"MNIST, page defaults (DCGAN 32x32, ngf=ndf=32, batch 64, seed 5x5 kernels), Runs on {backend!r} "
                      f"= {t['backend']}: {t['step']} steps, {t['ips']:.1f} images/s, {t['msPerStep']:.0f} ms/step (moving "
                      f"average), D loss {t['dloss']:.3f}; main-thread tasks over 50 ms from step 1 to the save at the end: {long_tasks['count']}, "
                      f"longest {long_tasks['maxMs']} ms")
                for frame in long_tasks.get("frames", []):
                    print(f"  a long animation frame: {frame}")
    finally:
        www.shutdown()
    return 0


def time_to_digits(driver, caps_file, limit):
    """Not a test: from clicking "Train on MNIST" at the page's defaults (fresh profile, backend
    "the faster here") to a grid in which the shipped classifier finds at least 8 of the 10
    digit classes with confidence (p >= 0.9) among 256 samples ("Measure quality", every 25
    steps while training goes on). Prints each measurement and the time."""
    www = serve_in_background(functools.partial(QuietWww, directory="www"))
    url = f"http://127.0.0.1:{www.server_address[1]}/index.html"
    try:
        with Browser(driver, caps_file) as b:
            open_page(b, url)
            print("adapter:", js(b, "return document.getElementById('status').textContent"))
            set_controls(b, {"steps": 100000})
            start = time.monotonic()
            click(b, "train-mnist")
            checked = 0
            while time.monotonic() - start < float(limit):
                s, _ = wait(b, f"step {checked + 25}", lambda s: s["training"]["step"] >= checked + 25, 3600)
                checked = s["training"]["step"]
                js(b, "window.webgan.training.score = null")
                click(b, "score")
                s, _ = wait(b, "the score", lambda s: s["training"].get("score"), 600)
                score = s["training"]["score"]
                found = int(re.search(r"classes present (\d+)/10", score).group(1))
                elapsed = time.monotonic() - start
                print(f"{elapsed:6.0f} s, step {s['training']['step']} ({s['training']['backend']}, "
                      f"{s['training']['msPerStep']:.0f} ms/step): {score.split('digits: ')[1].split('; per class')[0]}", flush=True)
                if found >= 8:
                    print(f"time to digits: {elapsed:.0f} s from the click to 8+ of 10 classes confident, at step {s['training']['step']}")
                    return 0
            print(f"time to digits: not within {limit} s")
            return 1
    finally:
        www.shutdown()


def heap(driver, caps_file, steps):
    """Not a test: the CPU backend's wasm heap (its peak: wasm memory only grows) while "Train on
    MNIST" runs `steps` steps on the CPU path, printed every 100 steps. Bounded means it stops
    growing after the first steps."""
    www = serve_in_background(functools.partial(QuietWww, directory="www"))
    url = f"http://127.0.0.1:{www.server_address[1]}/index.html"
    read = {"script": "window.webgan.cpuHeapBytes().then(arguments[0])", "args": []}
    try:
        with Browser(driver, caps_file) as b:
            open_page(b, url)
            set_controls(b, {"backend": "cpu", "steps": int(steps), "every": 100000})
            click(b, "train-mnist")
            for at in range(1, int(steps) + 1, 100):
                s, _ = wait(b, f"step {at}", lambda s: s["training"]["step"] >= at, 3600)
                mib = b.cmd("POST", "/execute/async", read) / 2**20
                print(f"step {s['training']['step']:5}: wasm heap {mib:.1f} MiB ({s['training']['msPerStep']:.0f} ms/step)", flush=True)
            train_until(b, int(steps), 3600)
            print(f"step {int(steps):5}: wasm heap {b.cmd('POST', '/execute/async', read) / 2**20:.1f} MiB")
    finally:
        www.shutdown()
    return 0

