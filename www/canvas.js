// Drawing the workers' pictures onto the page's canvases.

// Shows `picture` (an ImageBitmap drawn in a worker, see www/worker.js) on `canvas`, resizing
// the canvas to it, and releases the bitmap.
export function show(canvas, picture) {
  if (canvas.width !== picture.width || canvas.height !== picture.height) {
    canvas.width = picture.width;
    canvas.height = picture.height;
  }
  canvas.getContext('2d').drawImage(picture, 0, 0);
  picture.close();
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
