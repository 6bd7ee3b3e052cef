// Drawing RGBA pixels from the wasm package onto canvases.

// Puts square RGBA pixels (a Uint8ClampedArray of side*side*4) onto `canvas`, resizing it.
export function putSquare(canvas, rgba) {
  const side = Math.round(Math.sqrt(rgba.length / 4));
  if (canvas.width !== side || canvas.height !== side) {
    canvas.width = side;
    canvas.height = side;
  }
  canvas.getContext('2d').putImageData(new ImageData(rgba, side, side), 0, 0);
}

// Saves what `canvas` shows as a PNG file named `name`.
export function downloadPng(canvas, name) {
  canvas.toBlob((blob) => downloadBlob(blob, name), 'image/png');
}

export function downloadBlob(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
