// Decodes one image file off the main thread: centre-crops it to a square, resizes it to
// size x size and returns the RGBA pixels (transferred, not copied) and whether they are all
// grey, or why it was skipped.
// Reasons start with the same kinds as the native loader's: "not an image", "corrupt image",
// "too large".

// What the first bytes say the file is (the browser decodes more formats than these; the
// name is only for the reason shown when decoding fails).
const SIGNATURES = [
  ['PNG', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  ['JPEG', [0xff, 0xd8, 0xff]],
  ['GIF', [0x47, 0x49, 0x46, 0x38]],
  ['WebP', [0x52, 0x49, 0x46, 0x46]],
  ['BMP', [0x42, 0x4d]],
];

async function sniff(file) {
  const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
  for (const [name, magic] of SIGNATURES) if (magic.every((b, i) => head[i] === b)) return name;
  return null;
}

self.onmessage = async (event) => {
  const { id, file, size } = event.data;
  try {
    if (file.size === 0) throw new Skip('not an image: empty file (0 bytes)');
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch (e) {
      const format = await sniff(file).catch(() => null);
      if (!format) {
        const type = file.type ? `, type ${file.type}` : '';
        throw new Skip(`not an image: content is not an image format the browser decodes (${file.size} bytes${type})`);
      }
      throw new Skip(`corrupt image: ${format} data does not decode, truncated or damaged (${file.size} bytes; ${e.name})`);
    }
    if (bitmap.width === 0 || bitmap.height === 0) throw new Skip(`corrupt image: ${bitmap.width}x${bitmap.height} pixels`);
    const side = Math.min(bitmap.width, bitmap.height);
    const canvas = new OffscreenCanvas(size, size);
    const ctx = canvas.getContext('2d');
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, size, size);
    bitmap.close();
    const rgba = ctx.getImageData(0, 0, size, size).data;
    self.postMessage({ id, rgba, grey: isGrey(rgba) }, [rgba.buffer]);
  } catch (e) {
    self.postMessage({ id, error: e instanceof Skip ? e.message : `corrupt image: could not be decoded (${e.message ?? e})` });
  }
};

class Skip extends Error {}

// Whether every pixel is a shade of grey (channels within 2 levels: JPEG's colour rounding),
// so that the page can propose training in grey.
function isGrey(rgba) {
  for (let i = 0; i < rgba.length; i += 4) {
    const [r, g, b] = [rgba[i], rgba[i + 1], rgba[i + 2]];
    if (Math.abs(r - g) > 2 || Math.abs(g - b) > 2) return false;
  }
  return true;
}
