//! Layer geometry shared by the GPU kernels and the CPU reference.
//!
//! Layout everywhere is NCHW (batch, channel, row, column), row-major, f32, as in PyTorch, so
//! exported weights mean the same thing there. Kernels are square (k x k); images need not be.
//! Padding follows PyTorch: conv2d pads the input by `pad` on every side; conv_transpose2d is the
//! exact adjoint of the conv2d with the same (k, stride, pad), plus `out_pad` extra rows and
//! columns at the bottom/right of its output.

/// conv2d: x [batch, c_in, h_in, w_in] * weight [c_out, c_in, k, k] (+ bias [c_out])
/// -> y [batch, c_out, h_out, w_out].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Conv2d {
    pub fn h_out(&self) -> usize {
        (self.h_in + 2 * self.pad - self.kernel) / self.stride + 1
    }
    pub fn w_out(&self) -> usize {
        (self.w_in + 2 * self.pad - self.kernel) / self.stride + 1
    }
    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.h_in * self.w_in
    }
    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.h_out() * self.w_out()
    }
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in * self.kernel * self.kernel
    }
    /// Multiply-adds of the forward pass times two; each backward pass costs the same.
    pub fn flops(&self) -> f64 {
        2.0 * self.output_len() as f64 * (self.c_in * self.kernel * self.kernel) as f64
    }
}

/// conv_transpose2d: x [batch, c_in, h_in, w_in] with weight [c_in, c_out, k, k] (PyTorch's
/// ConvTranspose2d layout) (+ bias [c_out]) -> y [batch, c_out, h_out, w_out],
/// h_out = (h_in - 1) * stride - 2 * pad + kernel + out_pad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2d {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub out_pad: usize,
}

impl ConvTranspose2d {
    pub fn h_out(&self) -> usize {
        (self.h_in - 1) * self.stride + self.kernel + self.out_pad - 2 * self.pad
    }
    pub fn w_out(&self) -> usize {
        (self.w_in - 1) * self.stride + self.kernel + self.out_pad - 2 * self.pad
    }
    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.h_in * self.w_in
    }
    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.h_out() * self.w_out()
    }
    pub fn weight_len(&self) -> usize {
        self.c_in * self.c_out * self.kernel * self.kernel
    }
    /// The conv2d whose input gradient this layer's forward pass is: it maps y's shape back
    /// to x's shape with the same weight tensor ([c_in of this layer] is that conv's c_out).
    pub fn adjoint(&self) -> Conv2d {
        Conv2d {
            batch: self.batch,
            c_in: self.c_out,
            c_out: self.c_in,
            h_in: self.h_out(),
            w_in: self.w_out(),
            kernel: self.kernel,
            stride: self.stride,
            pad: self.pad,
        }
    }
    pub fn flops(&self) -> f64 {
        2.0 * self.input_len() as f64 * (self.c_out * self.kernel * self.kernel) as f64
    }
}

/// Batchnorm over (N, H, W) per channel: x [batch, channels, spatial] where spatial = h * w
/// (1 after a linear layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchNorm {
    pub batch: usize,
    pub channels: usize,
    pub spatial: usize,
}

impl BatchNorm {
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.spatial
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Batchnorm hyperparameters (PyTorch's defaults; DCGAN's "decay 0.9" is momentum 0.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    pub momentum: f32,
    pub eps: f32,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig { momentum: 0.1, eps: 1e-5 }
    }
}

/// linear: x [batch, d_in] with weight [d_out, d_in] (PyTorch's layout) (+ bias [d_out])
/// -> y [batch, d_out].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linear {
    pub batch: usize,
    pub d_in: usize,
    pub d_out: usize,
}

impl Linear {
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.d_in * self.d_out) as f64
    }
}

/// Pointwise activations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
}

/// Adam hyperparameters (DCGAN's defaults: lr 2e-4, beta1 0.5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 }
    }
}
