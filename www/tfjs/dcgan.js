// The project's DCGAN and its training step, written in TensorFlow.js (the global `tf` of the
// pinned UMD bundles that index.html loads from node_modules), for the side-by-side benchmark.
//
// Same models as src/model/spec.rs, same step as src/train.rs:
//   G: z (100) -> dense (+bias) -> 4x4 x C0 -> BN -> ReLU, then per stage a stride-2 transposed
//      conv (+bias) doubling the size and halving the width -> BN -> ReLU; the last to the
//      image's channels -> tanh.
//   D: per stage a stride-2 conv (+bias) halving the size and doubling the width from ndf ->
//      BN (from the second stage on) -> LeakyReLU(0.2); flatten -> dense (+bias) -> one logit.
//   BN: batch statistics in training (biased variance to normalise, eps 1e-5), running
//      statistics updated with momentum 0.1 and the unbiased variance, as PyTorch.
//   Init: conv weights truncated normal (std 0.02), dense weights normal (std 0.01), biases 0,
//      gamma 1, beta 0. Adam lr 2e-4, beta1 0.5, beta2 0.999, eps 1e-8 on both networks.
//   Step (DCGAN-PyTorch's order): D on the real batch (BCE with logits vs 1) and on G(z) (vs 0),
//      gradients accumulated (one sum), Adam on D; then D, updated, on the same G(z) vs 1,
//      backward through D into G, Adam on G. G's forward runs once per step: the D update is a
//      nested gradient inside G's, so G(z) is recorded once and reused, as in PyTorch.
// Layout is NHWC (TensorFlow.js's convs take only NHWC); padding is PyTorch's, given as a
// number (tf's 'same' would pad 5x5 convs 1 before and 2 after instead of 2 and 1).

/* global tf */

// Each model, and the same model as this project's ModelConfig words (`with_options`).
export const MODELS = {
  mnist32: {
    size: 32, channels: 1, z: 100, ngf: 32, ndf: 32, kernel: 4, pad: 1, batch: 64,
    webgan: 'size=32 channels=1 z=100 ngf=32 ndf=32 kernel=k4s2p1 batch=64 lr=0.0002 beta1=0.5',
  },
  // The page's "Train on MNIST" (ModelConfig::mnist(): the seed's 5x5 kernels).
  page32: {
    size: 32, channels: 1, z: 100, ngf: 32, ndf: 32, kernel: 5, pad: 2, batch: 64,
    webgan: 'size=32 channels=1 z=100 ngf=32 ndf=32 kernel=seed5x5 batch=64 lr=0.0002 beta1=0.5',
  },
  dcgan64: {
    size: 64, channels: 3, z: 100, ngf: 64, ndf: 64, kernel: 5, pad: 2, batch: 64,
    webgan: 'size=64 channels=3 z=100 ngf=64 ndf=64 kernel=seed5x5 batch=64 lr=0.0002 beta1=0.5',
  },
};

const BN_MOMENTUM = 0.1;
const BN_EPS = 1e-5;
const ADAM = { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
const LEAK = 0.2;

/// xorshift32: deterministic inputs without depending on tf's RNG.
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

function stages(m) {
  return Math.log2(m.size / 4);
}

/// Both networks' parameters and running statistics as tf.Variables.
export function build(m, seed = 1) {
  return tf.tidy(() => buildNets(m, seed));
}

function buildNets(m, seed) {
  let n = 0;
  const v = (t, _name, trainable = true) => { n++; return tf.variable(t, trainable); };
  const conv = (k, a, b, name) => v(tf.truncatedNormal([k, k, a, b], 0, 0.02, 'float32', seed + n), name);
  const bn = (c, name) => ({
    gamma: v(tf.ones([c]), `${name}_gamma`),
    beta: v(tf.zeros([c]), `${name}_beta`),
    mean: v(tf.zeros([c]), `${name}_rmean`, false),
    variance: v(tf.ones([c]), `${name}_rvar`, false),
  });
  const S = stages(m);
  const c0 = m.ngf << (S - 1);
  const G = {
    dense: { w: v(tf.randomNormal([m.z, 16 * c0], 0, 0.01, 'float32', seed), 'g_dense_w'), b: v(tf.zeros([16 * c0]), 'g_dense_b') },
    bn0: bn(c0, 'g_bn0'),
    convs: [],
    c0,
  };
  let c = c0;
  for (let s = 0; s < S; s++) {
    const last = s + 1 === S;
    const out = last ? m.channels : c / 2;
    // conv2dTranspose's filter is [k, k, out, in].
    G.convs.push({ f: conv(m.kernel, out, c, `g_convt${s}`), b: v(tf.zeros([out]), `g_convt${s}_b`), bn: last ? null : bn(out, `g_bn${s + 1}`), out });
    c = out;
  }
  const D = { convs: [] };
  c = m.channels;
  for (let s = 0; s < S; s++) {
    const out = m.ndf << s;
    D.convs.push({ f: conv(m.kernel, c, out, `d_conv${s}`), b: v(tf.zeros([out]), `d_conv${s}_b`), bn: s > 0 ? bn(out, `d_bn${s}`) : null });
    c = out;
  }
  D.dense = { w: v(tf.randomNormal([16 * c, 1], 0, 0.01, 'float32', seed + 1), 'd_dense_w'), b: v(tf.zeros([1]), 'd_dense_b') };

  const trainable = (net) => {
    const out = [];
    const walk = (o) => {
      if (o instanceof tf.Variable) { if (o.trainable) out.push(o); } else if (o && typeof o === 'object') Object.values(o).forEach(walk);
    };
    walk(net);
    return out;
  };
  const all = [];
  const walkAll = (o) => {
    if (o instanceof tf.Variable) all.push(o); else if (o && typeof o === 'object') Object.values(o).forEach(walkAll);
  };
  walkAll(G);
  walkAll(D);
  return {
    m, G, D,
    gVars: trainable(G),
    dVars: trainable(D),
    all,
    gOpt: tf.train.adam(ADAM.lr, ADAM.beta1, ADAM.beta2, ADAM.eps),
    dOpt: tf.train.adam(ADAM.lr, ADAM.beta1, ADAM.beta2, ADAM.eps),
  };
}

/// Batchnorm over N, H, W with batch statistics (training mode); updates the running ones.
function batchNormTrain(x, p) {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  const n = x.size / x.shape[3];
  tf.tidy(() => {
    p.mean.assign(p.mean.mul(1 - BN_MOMENTUM).add(mean.mul(BN_MOMENTUM)));
    p.variance.assign(p.variance.mul(1 - BN_MOMENTUM).add(variance.mul(BN_MOMENTUM * n / (n - 1))));
  });
  return tf.batchNorm(x, mean, variance, p.beta, p.gamma, BN_EPS);
}

function generator(net, z) {
  const { m, G } = net;
  let h = tf.fused.matMul({ a: z, b: G.dense.w, bias: G.dense.b });
  h = tf.relu(batchNormTrain(h.reshape([m.batch, 4, 4, G.c0]), G.bn0));
  let hw = 4;
  for (const l of G.convs) {
    hw *= 2;
    h = tf.conv2dTranspose(h, l.f, [m.batch, hw, hw, l.out], 2, m.pad).add(l.b);
    h = l.bn ? tf.relu(batchNormTrain(h, l.bn)) : tf.tanh(h);
  }
  return h;
}

function discriminator(net, x) {
  const { m, D } = net;
  let h = x;
  for (const l of D.convs) {
    h = tf.fused.conv2d({ x: h, filter: l.f, strides: 2, pad: m.pad, bias: l.b });
    if (l.bn) h = batchNormTrain(h, l.bn);
    h = tf.leakyRelu(h, LEAK);
  }
  return tf.fused.matMul({ a: h.reshape([m.batch, -1]), b: D.dense.w, bias: D.dense.b });
}

/// Mean binary cross-entropy of sigmoid(logits) against a constant target, in the stable form
/// max(x, 0) - x t + log(1 + exp(-|x|)) (as src/ops/loss.rs).
function bceWithLogits(logits, target) {
  const t = tf.relu(logits).sub(logits.mul(target)).add(tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
  return tf.mean(t);
}

/// One training step; returns kept scalars [D loss real, D(x), D loss fake, D(G(z)), G loss,
/// D(G(z)) after D's update] (the order of src/train.rs's metrics); the caller disposes them.
export function step(net, real, z) {
  const metrics = [];
  const keep = (t) => { metrics.push(tf.keep(t)); };
  const { value: gLoss, grads: gGrads } = tf.variableGrads(() => {
    const fake = generator(net, z);
    const { value: dLoss, grads: dGrads } = tf.variableGrads(() => {
      const lr = discriminator(net, real);
      const lossReal = bceWithLogits(lr, 1);
      keep(lossReal.clone());
      keep(tf.sigmoid(lr).mean());
      const lf = discriminator(net, fake);
      const lossFake = bceWithLogits(lf, 0);
      keep(lossFake.clone());
      keep(tf.sigmoid(lf).mean());
      return lossReal.add(lossFake);
    }, net.dVars);
    net.dOpt.applyGradients(dGrads);
    tf.dispose(dGrads);
    dLoss.dispose();
    const lg = discriminator(net, fake);
    keep(tf.sigmoid(lg).mean());
    return bceWithLogits(lg, 1);
  }, net.gVars);
  net.gOpt.applyGradients(gGrads);
  tf.dispose(gGrads);
  const [lossReal, dx, lossFake, dgz, dgzAfter] = metrics;
  return [lossReal, dx, lossFake, dgz, gLoss, dgzAfter];
}

/// The fixed inputs of a timed run: a "real" batch of random bytes mapped to [-1, 1) (as the
/// project's benchmark feeds random bytes) and one z from N(0, 1).
export function inputs(m, seed = 1) {
  const r = rng(seed);
  const img = new Float32Array(m.batch * m.size * m.size * m.channels);
  for (let i = 0; i < img.length; i++) img[i] = Math.floor(r() * 256) / 127.5 - 1;
  const real = tf.tensor4d(img, [m.batch, m.size, m.size, m.channels]);
  const z = tf.randomNormal([m.batch, m.z], 0, 1, 'float32', seed);
  return { real, z };
}

/// Largest |now - then| over a list of tensors (then: clones taken before the run).
export async function maxChange(now, then) {
  const per = tf.tidy(() => tf.stack(now.map((v, i) => tf.max(tf.abs(v.sub(then[i]))))).max());
  const out = (await per.data())[0];
  per.dispose();
  return out;
}

/// TensorFlow.js 4.22's wasm backend has no Conv2DBackpropFilter kernel, which every conv's
/// weight gradient (and every transposed conv's) needs. This registers one made of kernels the
/// wasm backend has, the costly part on its XNNPACK Conv2D: with x padded (or cropped) to exactly
/// the rows and columns the windows touch,
///   dW[kh, kw, ci, co] = sum over (n, oh, ow) of x[n, oh*s + kh, ow*s + kw, ci] * dy[n, oh, ow, co]
/// is a stride-1 conv with dilation s of x transposed to [ci, H, W, n] (channels as the batch)
/// by dy transposed to [OH, OW, n, co] (the filter), whose [ci, KH, KW, co] output transposes to
/// dW. (An im2col of strided slices and one matmul measured 2-3x slower: the wasm backend's
/// StridedSlice and transposed BatchMatMul are not XNNPACK.) Returns what it registered.
export function addMissingKernels(backendName) {
  if (backendName !== 'wasm' || tf.getKernel('Conv2DBackpropFilter', 'wasm')) return [];
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs: { x, dy }, attrs }) => {
      const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
      if (dataFormat && dataFormat !== 'NHWC') throw new Error(`Conv2DBackpropFilter (added for wasm): only NHWC, not ${dataFormat}`);
      const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode);
      const { inHeight, inWidth, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw,
        strideHeight: sh, strideWidth: sw, padInfo } = info;
      return tf.tidy(() => {
        const needH = (oh - 1) * sh + kh, needW = (ow - 1) * sw + kw;
        let xp = tf.pad(x, [[0, 0], [padInfo.top, Math.max(0, needH - inHeight - padInfo.top)],
          [padInfo.left, Math.max(0, needW - inWidth - padInfo.left)], [0, 0]]);
        if (xp.shape[1] !== needH || xp.shape[2] !== needW) xp = tf.slice(xp, [0, 0, 0, 0], [-1, needH, needW, -1]);
        const y = tf.conv2d(tf.transpose(xp, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), 1, 'valid', 'NHWC', [sh, sw]);
        return tf.transpose(y, [1, 2, 0, 3]);
      });
    },
  });
  return ['Conv2DBackpropFilter (a dilated XNNPACK Conv2D on transposed x and dy)'];
}

/// Checks the active backend's Conv2DBackpropFilter against plain loops, for both kernel forms
/// (4x4 pad 1 and 5x5 pad 2, stride 2) on small odd shapes; returns the largest relative error.
export async function checkConv2DBackpropFilter() {
  let worst = 0;
  for (const [k, pad] of [[4, 1], [5, 2]]) {
    const [n, h, w, ci, co, s] = [3, 9, 8, 5, 7, 2];
    const r = rng(k);
    const fill = (len) => Float32Array.from({ length: len }, () => r() * 2 - 1);
    const oh = Math.floor((h + 2 * pad - k) / s) + 1, ow = Math.floor((w + 2 * pad - k) / s) + 1;
    const xv = fill(n * h * w * ci), dyv = fill(n * oh * ow * co);
    const got = tf.tidy(() => tf.conv2d(tf.tensor4d(xv, [n, h, w, ci]), tf.zeros([k, k, ci, co]), s, pad)); // shape check
    got.dispose();
    const t = tf.tidy(() => {
      const x = tf.tensor4d(xv, [n, h, w, ci]);
      return tf.grad((f) => tf.conv2d(x, f, s, pad).mul(tf.tensor4d(dyv, [n, oh, ow, co])).sum())(tf.zeros([k, k, ci, co]));
    });
    const dw = await t.data();
    t.dispose();
    let scale = 0, err = 0;
    for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) for (let c = 0; c < ci; c++) for (let d = 0; d < co; d++) {
      let sum = 0;
      for (let i = 0; i < n; i++) for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) {
        const yy = y * s + a - pad, xx = x * s + b - pad;
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
        sum += xv[((i * h + yy) * w + xx) * ci + c] * dyv[((i * oh + y) * ow + x) * co + d];
      }
      scale = Math.max(scale, Math.abs(sum));
      err = Math.max(err, Math.abs(sum - dw[((a * k + b) * ci + c) * co + d]));
    }
    worst = Math.max(worst, err / scale);
  }
  return worst;
}
