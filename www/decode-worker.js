// Decodes one image file off the main thread: centre-crops it to a square, resizes it to
// size x size and returns the RGBA pixels (transferred, not copied), or why it was skipped.

self.onmessage = async (event) => {
  const { id, file, size } = event.data;
  try {
    if (file.size === 0) throw new Skip('empty file (0 bytes)');
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch {
      throw new Skip(file.type && !file.type.startsWith('image/') ? `not an image (${file.type})` : 'not a decodable image');
    }
    const side = Math.min(bitmap.width, bitmap.height);
    const canvas = new OffscreenCanvas(size, size);
    const ctx = canvas.getContext('2d');
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, size, size);
    bitmap.close();
    const rgba = ctx.getImageData(0, 0, size, size).data;
    self.postMessage({ id, rgba }, [rgba.buffer]);
  } catch (e) {
    self.postMessage({ id, error: e instanceof Skip ? e.message : `could not be decoded (${e.message ?? e})` });
  }
};

class Skip extends Error {}
