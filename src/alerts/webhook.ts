/**
 * The webhook sink: one HTTP POST of an alert's JSON. Whatever the receiver does, the cost is bounded: a timeout
 * per attempt (connect to last byte), no redirect followed (a 3xx is a failure naming where it pointed), and at
 * most RESPONSE_PEEK_BYTES of the reply read (for the error message; a 100 MB reply is cut off, never buffered).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** How much of a reply is read, at most: enough for an error line. */
export const RESPONSE_PEEK_BYTES = 4096;

export interface PostResult {
  ok: boolean;
  /** One line for the journal: `HTTP 204`, `HTTP 500: <body start>`, `timed out after 5000 ms`, ... */
  message: string;
}

/** Where a URL points, for messages: scheme, host and port only (a URL's path or query may carry a secret). */
export function urlOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(not a URL)';
  }
}

function oneLine(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** Read at most `max` bytes of a reply, then drop the connection: the rest is never received into memory. */
function peek(res: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      res.removeAllListeners('data');
      resolve(Buffer.concat(chunks).subarray(0, max).toString('utf8'));
    };
    res.on('data', (b: Buffer) => {
      chunks.push(b);
      size += b.length;
      if (size >= max) {
        res.destroy();
        done();
      }
    });
    res.on('end', done);
    res.on('error', done);
    res.on('close', done);
  });
}

/** POST `body` to `url` once, within `timeoutMs`. Never rejects. */
export function postJson(url: string, body: string, timeoutMs: number): Promise<PostResult> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.resolve({ ok: false, message: 'the URL is not valid' });
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:')
    return Promise.resolve({ ok: false, message: `unsupported URL scheme ${target.protocol}` });
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: PostResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = request(
      target,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'mosaic-fleet-alerts/1',
        },
        // No connection pooling: a sink is called a few times per episode, and a kept-alive socket would hold
        // the watcher's event loop open.
        agent: false,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          // The reply's body is of no interest: do not read it (a huge one is cut off here).
          res.destroy();
          finish({ ok: true, message: `HTTP ${status}` });
          return;
        }
        if (status >= 300 && status < 400) {
          res.destroy();
          // Never followed: a redirect could send the alert (and what it says about the fleet) anywhere.
          const to =
            res.headers.location === undefined ? '' : ` to ${urlOrigin(String(res.headers.location))}`;
          finish({ ok: false, message: `HTTP ${status}: redirect${to} not followed` });
          return;
        }
        void peek(res, RESPONSE_PEEK_BYTES).then((text) =>
          finish({ ok: false, message: `HTTP ${status}${text.trim() ? `: ${oneLine(text)}` : ''}` }),
        );
      },
    );
    const timer = setTimeout(
      () => finish({ ok: false, message: `timed out after ${timeoutMs} ms` }),
      timeoutMs,
    );
    req.on('error', (e: NodeJS.ErrnoException) =>
      finish({ ok: false, message: oneLine(e.code ? `${e.code}: ${e.message}` : e.message) }),
    );
    req.end(body);
  });
}
