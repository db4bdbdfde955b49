// The requester API as the dashboard uses it: the session cookie travels by itself; every change
// carries the CSRF token the login gave.
let csrf = '';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!res.ok) {
    const e = json && json.error ? json.error : { code: 'http_' + res.status, message: text };
    throw new ApiError(res.status, e.code, e.message);
  }
  return json;
}

export const api = {
  get: (path) => call('GET', path),
  post: (path, body) => call('POST', path, body === undefined ? {} : body),
};

export async function restoreSession() {
  try {
    const s = await call('GET', '/dashboard/api/session');
    csrf = s.csrf;
    return true;
  } catch {
    return false;
  }
}

export async function login(token) {
  const s = await call('POST', '/dashboard/api/login', { token });
  csrf = s.csrf;
}

export async function logout() {
  await call('POST', '/dashboard/api/logout', {});
  csrf = '';
}

export function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? '?' + s : '';
}
