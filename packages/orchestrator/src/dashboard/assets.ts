import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** A file the dashboard page loads from the orchestrator itself (no CDN: the page's CSP allows nothing from elsewhere). */
export interface Asset {
  /** Content-hashed (`uplot-<hash>.js`), so a browser may keep it for good. */
  name: string;
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  etag: string;
  /** For the tag's `integrity` attribute (Subresource Integrity). */
  integrity: string;
}

/** uPlot (npm `uplot`): the chart script, a global `uPlot`, and its stylesheet. */
export interface ChartAssets {
  script: Asset;
  style: Asset;
}

const require = createRequire(import.meta.url);

function load(specifier: string, base: string, ext: string, contentType: string): Asset {
  let file: string;
  try {
    file = require.resolve(specifier);
  } catch (cause) {
    throw new Error(`the dashboard's chart library is missing: cannot find ${specifier} (the orchestrator's dependency uplot: npm install)`, { cause });
  }
  const body = new Uint8Array(readFileSync(file));
  const digest = createHash('sha384').update(body).digest();
  const hex = digest.toString('hex');
  return { name: `${base}-${hex.slice(0, 16)}.${ext}`, body, contentType, etag: `"${hex.slice(0, 32)}"`, integrity: `sha384-${digest.toString('base64')}` };
}

let cached: ChartAssets | undefined;

/** Read once per process, when the dashboard is made (so a missing file stops the start, not the first page). */
export function chartAssets(): ChartAssets {
  cached ??= {
    script: load('uplot/dist/uPlot.iife.min.js', 'uplot', 'js', 'text/javascript; charset=utf-8'),
    style: load('uplot/dist/uPlot.min.css', 'uplot', 'css', 'text/css; charset=utf-8'),
  };
  return cached;
}
