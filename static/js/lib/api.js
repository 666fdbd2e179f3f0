// The JSON API client. Every failure becomes an ApiError with the server's code and message
// (the API answers {"error": {"code", "message"}}), or code "network" when nothing answered.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export class Api {
  /**
   * @param {object} auth  where credentials come from: {csrf(): string|null} for agents,
   *                       {customerKey(): string|null} for web customers.
   */
  constructor(auth = {}) {
    this.auth = auth;
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body) {
    return this.request('POST', path, body ?? {});
  }

  put(path, body) {
    return this.request('PUT', path, body ?? {});
  }

  async request(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const csrf = this.auth.csrf?.();
    if (csrf && method !== 'GET') headers['X-CSRF-Token'] = csrf;
    const key = this.auth.customerKey?.();
    if (key) headers['X-Customer-Key'] = key;

    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (err) {
      throw new ApiError(0, 'network', 'The server could not be reached. Check the network connection and try again.');
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (err) {
        data = null; // a proxy's HTML error page: reported below by status
      }
    }
    if (!response.ok) {
      const error = data && typeof data === 'object' ? data.error : null;
      throw new ApiError(
        response.status,
        error?.code ?? `http_${response.status}`,
        error?.message ?? `The server answered ${response.status} ${response.statusText}.`,
      );
    }
    if (data === null) throw new ApiError(response.status, 'invalid_response', 'The server sent an unreadable answer.');
    return data;
  }
}
