use webgan::data::idx::{mnist_pool, read_idx_images, read_idx_labels};
use webgan::gpu::Gpu;
use webgan::model::classifier::*;
use webgan::shape::AdamConfig;
#[test]
fn probe() {
    let w = ClassifierWeights::from_bytes(&std::fs::read("runs/classifier/mnist-classifier.safetensors").unwrap()).unwrap();
    let images = read_idx_images(&std::fs::read("www/data/mnist/t10k-images-idx3-ubyte.gz").unwrap()).unwrap();
    let labels = read_idx_labels(&std::fs::read("www/data/mnist/t10k-labels-idx1-ubyte.gz").unwrap()).unwrap();
    let train = mnist_pool(&read_idx_images(&std::fs::read("www/data/mnist/train-images-idx3-ubyte.gz").unwrap()).unwrap(), SIZE).unwrap();
    let pool = mnist_pool(&images, SIZE).unwrap();
    let gpu = pollster::block_on(Gpu::new()).unwrap();
    let c = Classifier::new(&gpu, &w, 250, &gpu.tiles, &AdamConfig::default()).unwrap();
    c.calibrate_batchnorm(&gpu, &train.pixels()[..5000 * 1024]);
    let n = 2000;
    let logits = pollster::block_on(c.logits_u8(&gpu, &pool.pixels()[..n * 1024])).unwrap();
    println!("eval mode after calibration: {}", accuracy(&logits, &labels[..n]));
}
