"""The native tests: `cargo test --release`, but with the test binaries run side by side.

Why not plain `cargo test`: it runs one test binary at a time, and on lavapipe a binary's GPU
tests spend nearly all their time compiling pipelines, which one device does one at a time (two
test threads of one binary kept one core busy, measured here). Separate processes compile in
parallel, and share what they compiled through Mesa's shader cache. So this builds the test
binaries with cargo, then runs up to JOBS of them at once (default: the machine's cores), the
slowest first, each in its own process with libtest's own harness. Each binary's output is
printed whole when it ends, under cargo's "Running ..." header, so the summary that build.sh
prints counts it like cargo test's. Every binary runs even when another fails.

    python3 tests/run_native.py [JOBS]        (from the repository root; build.sh does)

Exit status: 0 when everything built and every binary passed, 1 otherwise.
"""
import concurrent.futures, json, os, subprocess, sys, threading, time

# On lavapipe, GALLIVM_PERF=nopt skips LLVM's optimisation passes: compiling, nearly all of a
# cold GPU test's time, takes a third less (conv2d_matches_reference: 73 s -> 46 s), while the
# code runs slower. So every binary gets it except the ones that spend their time running
# kernels rather than compiling them (learning: 120 s without, over 400 s with). A GALLIVM_PERF
# set by the caller is left as it is. Other drivers ignore the variable.
RUN_BOUND = {"learning", "classifier"}

# Run first: the binaries that take longest on a cold CPU adapter, so that the short ones fill
# the gaps at the end instead of one long binary running alone (measured, 2-core machine).
SLOW_FIRST = ["kernels", "learning", "classifier", "shaders", "autotune", "train_step", "fast_cpu",
              "checkpoint", "weights", "seed_limits", "limits"]


def build():
    """Builds every test binary (cargo's own output to stderr); returns [(name, source, command)]."""
    cmd = ["cargo", "test", "--release", "--no-run", "--message-format=json-render-diagnostics"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    binaries = []
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("profile", {}).get("test") and msg.get("executable"):
            target = msg["target"]
            command = [msg["executable"]]
            # tests/torch.rs needs PyTorch: its tests are #[ignore]d unless build.sh installed it.
            if target["name"] == "torch" and os.environ.get("WEBGAN_PYTHON"):
                command.append("--ignored")
            binaries.append((target["name"], os.path.relpath(target["src_path"]), command))
    if proc.returncode != 0:
        print(f"error: {' '.join(cmd)} failed (exit {proc.returncode})", flush=True)
        return None
    return binaries


def order(name):
    return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)


def main(jobs):
    started = time.monotonic()
    binaries = build()
    if binaries is None:
        return 1
    print(f"built in {time.monotonic() - started:.0f} s; running {len(binaries)} test binaries and the doc-tests, "
          f"{jobs} at a time", flush=True)
    binaries.sort(key=lambda b: order(b[0]))
    binaries.append(("doc-tests", "doc-tests", ["cargo", "test", "--release", "--doc", "--quiet"]))
    printing = threading.Lock()
    failed = []

    def run(binary):
        name, source, command = binary
        env = dict(os.environ)
        if "GALLIVM_PERF" not in env and name not in RUN_BOUND:
            env["GALLIVM_PERF"] = "nopt"
        t0 = time.monotonic()
        proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace")
        secs = time.monotonic() - t0
        with printing:
            print(f"     Running {source} ({' '.join(command)})\n{proc.stdout}", flush=True)
            print(f"   {name}: exit {proc.returncode} after {secs:.0f} s\n", flush=True)
            if proc.returncode != 0:
                failed.append(name)

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(run, binaries))
    print(f"native tests: {len(binaries)} binaries (doc-tests included) in {time.monotonic() - started:.0f} s, "
          f"build included; {'failed: ' + ', '.join(failed) if failed else 'all passed'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else os.cpu_count() or 1))
