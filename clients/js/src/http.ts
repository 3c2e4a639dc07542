// One HTTP exchange with agentstated: a deadline on every call, the bearer token, and an
// RFC 9457 problem body turned into an AgentstateError that names the engine's code. The
// token never appears in an error.

export interface ClientOptions {
  /** agentstated's base URL, e.g. http://127.0.0.1:8787 */
  url: string;
  /** the tenant's bearer token; omit for a server without a token file (loopback only) */
  token?: string;
  /** the deadline of each call in milliseconds (default 10000) */
  timeoutMs?: number;
}

/** An error answered by agentstated: its HTTP status and the engine's stable code. */
export class AgentstateError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
    this.name = "AgentstateError";
  }
}

export class Http {
  readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(options: ClientOptions) {
    this.base = options.url.replace(/\/+$/, "");
    this.headers = options.token ? { authorization: `Bearer ${options.token}` } : {};
    this.timeoutMs = options.timeoutMs ?? 10000;
  }

  /** The JSON answer, or undefined for a 404 when `missingOk`. */
  async call<T>(
    method: string,
    path: string,
    options: { body?: unknown; missingOk?: boolean; headers?: Record<string, string> } = {},
  ): Promise<T | undefined> {
    const headers: Record<string, string> = { ...this.headers, ...options.headers };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["content-type"] = "application/json";
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    }
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      const why = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
      throw new AgentstateError(`agentstated at ${this.base} did not answer ${method} ${path.split("?")[0]}: ${why}`, 0, "unavailable");
    }
    const text = await response.text();
    if (response.ok) return JSON.parse(text) as T;
    if (response.status === 404 && options.missingOk) return undefined;
    let code = "internal";
    let detail = text.slice(0, 200);
    try {
      const problem = JSON.parse(text);
      code = problem.code ?? code;
      detail = problem.detail ?? detail;
    } catch {
      // not a problem body: keep the text
    }
    throw new AgentstateError(`agentstated: ${response.status} ${code}: ${detail}`, response.status, code);
  }
}

/** A path segment, percent-encoded. */
export const seg = (s: string) => encodeURIComponent(s);

/** A query string of the defined parameters. */
export function query(params: Record<string, string | number | undefined>): string {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join("&")}` : "";
}
