/**
 * A tar (ustar) of a few small files, for `PUT /containers/{id}/archive`:
 * what a claim writes into a pool member (warm-pool.ts). Directories are
 * made for each file's parents. Names are ours (ASCII, under 100 bytes);
 * contents are bytes.
 */
export interface TarFile {
  /** Relative path, e.g. `run/unionize/device.env`. */
  path: string;
  data: Buffer;
  mode: number;
}

const BLOCK = 512;

function header(name: string, size: number, mode: number, type: '0' | '5'): Buffer {
  if (Buffer.byteLength(name) > 99 || !/^[A-Za-z0-9._-][A-Za-z0-9._/-]*$/.test(name) || name.split('/').includes('..')) throw new Error(`tar: name ${JSON.stringify(name)} is not a short ASCII path`);
  const block = Buffer.alloc(BLOCK);
  const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, '0') + '\0';
  block.write(name, 0, 'ascii');
  block.write(octal(mode, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii'); // uid root
  block.write(octal(0, 8), 116, 'ascii'); // gid root
  block.write(octal(size, 12), 124, 'ascii');
  block.write(octal(Math.floor(Date.now() / 1000), 12), 136, 'ascii');
  block.write(type, 156, 'ascii');
  block.write('ustar\u000000', 257, 'ascii');
  // The checksum is taken with its own field as spaces.
  block.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(octal(sum, 7) + ' ', 148, 'ascii');
  return block;
}

export function tarOf(files: readonly TarFile[]): Buffer {
  const parts: Buffer[] = [];
  const dirs = new Set<string>();
  for (const file of files) {
    const segments = file.path.split('/');
    for (let i = 1; i < segments.length; i++) {
      const dir = `${segments.slice(0, i).join('/')}/`;
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      parts.push(header(dir, 0, 0o755, '5'));
    }
    parts.push(header(file.path, file.data.length, file.mode, '0'), file.data);
    const pad = (BLOCK - (file.data.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}
