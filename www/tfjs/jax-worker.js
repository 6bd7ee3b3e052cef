// jax-js's side of the comparison (compare.js), in a module worker: the same models as dcgan.js
// (src/model/spec.rs) and the same step (crate::step::gan_step's order), written the way jax-js
// is meant to be used: pure functions of parameter trees, `vjp` for G (its forward runs once per
// step, as in PyTorch), `valueAndGrad` for D, Adam as tree maps, the whole step under `jit`.
// jax-js 0.1.25 comes pinned from node_modules (package.json).
//
// Differences from the other rows, none of which costs a measurable share of a step: the running
// batchnorm statistics are not kept (nothing here draws in inference mode); G's transposed convs
// keep their kernels in the layout `convGeneralDilated` takes (flipped, [out, in, k, k]), a
// reparametrisation of PyTorch's; initial weights come from this file's own generator.
//
// Messages in: { id, cmd: 'run', device ('webgpu' or 'wasm'), model, reps }.
// Messages out: { id, line } as it goes, then { id, result } or { id, error }.

import * as jax from './node_modules/@jax-js/jax/dist/index.js';
import { MODELS } from './dcgan.js'; // its models only (nothing there runs TensorFlow.js on import)

const { numpy: np, nn, lax, tree } = jax;
const VERSION = '0.1.25';
const BN_EPS = 1e-5;
const ADAM = { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
const LEAK = 0.2;

let line = () => {};

// xorshift32 and Box-Muller: deterministic inputs and weights.
function normals(len, std, seed) {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return (s + 1) / 4294967297;
  };
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = std * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

const tensor = (values, shape) => np.array(values).reshape(shape);
const zeros = (shape) => np.zeros(shape);

/// Both networks' parameters as one tree: {g: {dense, bn0, convs}, d: {convs, dense}}.
function build(m) {
  const S = Math.log2(m.size / 4);
  const c0 = m.ngf << (S - 1);
  let seed = 1;
  const conv = (out, inp) => tensor(normals(out * inp * m.kernel * m.kernel, 0.02, seed++), [out, inp, m.kernel, m.kernel]);
  const bn = (c) => ({ gamma: np.ones([c]), beta: zeros([c]) });
  const g = { dense: { w: tensor(normals(m.z * 16 * c0, 0.01, seed++), [m.z, 16 * c0]), b: zeros([16 * c0]) }, bn0: bn(c0), convs: [] };
  let c = c0;
  for (let s = 0; s < S; s++) {
    const out = s + 1 === S ? m.channels : c / 2;
    g.convs.push({ f: conv(out, c), b: zeros([out]), ...(s + 1 === S ? {} : { bn: bn(out) }) });
    c = out;
  }
  const d = { convs: [] };
  c = m.channels;
  for (let s = 0; s < S; s++) {
    const out = m.ndf << s;
    d.convs.push({ f: conv(out, c), b: zeros([out]), ...(s > 0 ? { bn: bn(out) } : {}) });
    c = out;
  }
  d.dense = { w: tensor(normals(16 * c * 1, 0.01, seed++), [16 * c, 1]), b: zeros([1]) };
  return { g, d };
}

// Every function below takes ownership of its arguments (jax-js's rule): `.ref` where an array
// is used again.

/// Batchnorm over N, H, W with batch statistics (training mode), NCHW.
function batchNorm(x, p) {
  const c = x.shape[1];
  const mean = np.mean(x.ref, [0, 2, 3], { keepdims: true });
  const xc = x.sub(mean);
  const variance = np.mean(np.square(xc.ref), [0, 2, 3], { keepdims: true });
  const y = xc.div(np.sqrt(variance.add(BN_EPS)));
  return y.mul(p.gamma.reshape([1, c, 1, 1])).add(p.beta.reshape([1, c, 1, 1]));
}

const channelBias = (b) => b.reshape([1, b.shape[0], 1, 1]);

function generator(m, g, z) {
  const n = z.shape[0];
  const c0 = g.bn0.gamma.shape[0];
  let h = np.matmul(z, g.dense.w).add(g.dense.b).reshape([n, c0, 4, 4]);
  h = nn.relu(batchNorm(h, g.bn0));
  const pad = m.kernel - 1 - m.pad; // PyTorch's transposed conv as a conv of the 2x-dilated input
  const extra = m.kernel === 5 ? 1 : 0; // output_padding of the seed's 5x5 kernels
  for (const l of g.convs) {
    h = lax.convGeneralDilated(h, l.f, [1, 1], [[pad, pad + extra], [pad, pad + extra]], { lhsDilation: [2, 2] }).add(channelBias(l.b));
    h = l.bn ? nn.relu(batchNorm(h, l.bn)) : np.tanh(h);
  }
  return h;
}

function discriminator(m, d, x) {
  let h = x;
  for (const l of d.convs) {
    h = lax.convGeneralDilated(h, l.f, [2, 2], [[m.pad, m.pad], [m.pad, m.pad]]).add(channelBias(l.b));
    if (l.bn) h = batchNorm(h, l.bn);
    h = nn.leakyRelu(h, LEAK);
  }
  const n = h.shape[0];
  return np.matmul(h.reshape([n, -1]), d.dense.w).add(d.dense.b);
}

/// Mean BCE with logits against a constant label: softplus(-x) for 1, softplus(x) for 0.
const bce = (logits, label) => np.mean(nn.softplus(label === 1 ? np.negative(logits) : logits));
const meanProb = (logits) => np.mean(nn.sigmoid(logits));

/// Adam on one tree: returns [params, m, v]. `c1` and `c2` are the bias corrections
/// 1 - beta^t as scalar arrays (so that one compiled step serves every t).
function adam(p, grads, m1, m2, c1, c2) {
  const m1n = tree.map((m, g) => m.mul(ADAM.beta1).add(g.mul(1 - ADAM.beta1)), m1, tree.ref(grads));
  const m2n = tree.map((v, g) => v.mul(ADAM.beta2).add(np.square(g).mul(1 - ADAM.beta2)), m2, grads);
  const update = (q, m, v) => q.sub(m.div(c1.ref).mul(ADAM.lr).div(np.sqrt(v.div(c2.ref)).add(ADAM.eps)));
  const pn = tree.map(update, p, tree.ref(m1n), tree.ref(m2n));
  c1.dispose();
  c2.dispose();
  return [pn, m1n, m2n];
}

/// One step, DCGAN-PyTorch's order: D on the real batch and on G(z) (G(z) fixed), Adam on D;
/// D (updated) on the same G(z) against 1, back through D into G(z), then through G; Adam on G.
/// Returns the new state and the six metrics of crate::step::METRICS.
function trainStep(m, state, real, z, c1, c2) {
  const { p, m1, m2 } = state;
  const [fake, gPullback] = jax.vjp((g) => generator(m, g, z), [tree.ref(p.g)]);
  const dLoss = (d, x, f) => {
    const lr = discriminator(m, tree.ref(d), x);
    const lf = discriminator(m, d, f);
    const lossReal = bce(lr.ref, 1), lossFake = bce(lf.ref, 0);
    return [lossReal.ref.add(lossFake.ref), [lossReal, meanProb(lr), lossFake, meanProb(lf)]];
  };
  const [[dLossValue, dMetrics], dGrads] = jax.valueAndGrad(dLoss, { hasAux: true })(tree.ref(p.d), real, lax.stopGradient(fake.ref));
  dLossValue.dispose();
  const [d, dm1, dm2] = adam(p.d, dGrads, m1.d, m2.d, c1.ref, c2.ref);
  const gLoss = (f, dp) => {
    const lg = discriminator(m, dp, f);
    return [bce(lg.ref, 1), meanProb(lg)];
  };
  const [[lossG, dgzAfter], dFake] = jax.valueAndGrad(gLoss, { hasAux: true })(fake, tree.ref(d));
  const [gGrads] = gPullback(dFake);
  gPullback.dispose();
  const [g, gm1, gm2] = adam(p.g, gGrads, m1.g, m2.g, c1, c2);
  const metrics = np.stack([...dMetrics, lossG, dgzAfter]);
  return [{ p: { g, d }, m1: { g: gm1, d: dm1 }, m2: { g: gm2, d: dm2 } }, metrics];
}

async function run(device, name, reps) {
  const m = MODELS[name];
  const got = await jax.init(device);
  if (!got.includes(device)) throw new Error(`jax-js has no ${device} device here (it found: ${got.join(', ') || 'none'})`);
  jax.defaultDevice(device);
  const p = build(m);
  let state = { p, m1: tree.map((x) => np.zerosLike(x.ref), p), m2: tree.map((x) => np.zerosLike(x.ref), p) };
  const real = tensor(Float32Array.from({ length: m.batch * m.channels * m.size * m.size }, (_, i) => ((i * 37) % 256) / 127.5 - 1),
    [m.batch, m.channels, m.size, m.size]);
  const z = tensor(normals(m.batch * m.z, 1, 7), [m.batch, m.z]);
  const before = tree.map((x) => x.ref, p);
  // The whole step under jit (Adam's bias corrections enter as arrays: one compilation for all).
  const step = jax.jit((s, x, zz, c1, c2) => trainStep(m, s, x, zz, c1, c2));
  let t = 0;
  const one = () => {
    t++;
    const [next, metrics] = step(state, real.ref, z.ref, np.array(1 - ADAM.beta1 ** t), np.array(1 - ADAM.beta2 ** t));
    state = next;
    return metrics;
  };
  let t0 = performance.now();
  const first = one();
  const warm = await first.ref.data();
  first.dispose();
  const warmupMs = performance.now() - t0;
  t0 = performance.now();
  let last;
  for (let i = 0; i < reps; i++) {
    if (last) last.dispose();
    last = one();
  }
  const metrics = Array.from(await last.ref.data()); // waits for every queued step
  const ms = (performance.now() - t0) / reps;
  const change = (a, b) => np.max(np.abs(a.sub(b)));
  const gChange = (await np.max(np.stack(tree.leaves(tree.map(change, tree.ref(state.p.g), before.g)))).data())[0];
  const dChange = (await np.max(np.stack(tree.leaves(tree.map(change, tree.ref(state.p.d), before.d)))).data())[0];
  line(`  jax-js ${device}: after ${reps + 1} steps: ${metrics.map((v) => v.toFixed(4)).join(', ')} (warm-up: ${Array.from(warm).map((v) => v.toFixed(4)).join(', ')}); max |change| G ${gChange.toExponential(2)}, D ${dChange.toExponential(2)}`);
  const problems = [];
  if (![...metrics, ...warm].every(Number.isFinite)) problems.push('non-finite losses');
  if (!(gChange > 0) || !(dChange > 0)) problems.push('weights did not change');
  tree.dispose(state);
  last.dispose();
  real.dispose();
  z.dispose();
  step.dispose();
  return { impl: `jax-js ${device} (jit)`, warmupMs, ms, problems };
}

onmessage = async ({ data }) => {
  const { id } = data;
  line = (text) => postMessage({ id, line: text });
  try {
    const result = data.cmd === 'info' ? { version: VERSION } : await run(data.device, data.model, data.reps);
    postMessage({ id, result });
  } catch (e) {
    postMessage({ id, error: `jax-js ${VERSION}: ${e?.stack ?? e}` });
  }
};
