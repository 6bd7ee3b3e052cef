// The automatic save in the browser's storage (IndexedDB: checkpoints are megabytes, beyond
// localStorage). One record per model kind: {bytes, options, step, data, time}.

const DB = 'webgan';
const STORE = 'autosave';

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function run(mode, f) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = f(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req?.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('the save was aborted (storage full?)'));
    });
  } finally {
    db.close();
  }
}

export const putSave = (key, record) => run('readwrite', (s) => s.put(record, key));
export const allSaves = () => run('readonly', (s) => s.getAll());
