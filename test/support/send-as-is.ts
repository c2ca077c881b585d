import type { Lab } from '../lab/lab.js';

/**
 * Sends a request with its headers as they are (a captured or hand-signed
 * one) with curl inside a lab namespace: its status and error code. curl
 * sets Host from the URL, as any client sending to that server would.
 */
export async function sendAsIs(
  lab: Lab, ns: string, url: string, method: string, path: string, headers: Record<string, string>, body?: string,
): Promise<{ status: number; code: string | undefined }> {
  const argv = ['curl', '-sS', '-g', '--noproxy', '*', '--max-time', '10', '--cacert', lab.caFile, '-X', method, '-w', '\n%{http_code}'];
  for (const [name, value] of Object.entries(headers)) argv.push('-H', `${name}: ${value}`);
  if (body !== undefined) argv.push('--data-binary', body);
  argv.push(`${url}${path}`);
  const result = await lab.run(ns, argv);
  const lines = result.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  let code: string | undefined;
  try {
    code = (JSON.parse(lines.join('\n')) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status, code };
}
