/** Calls to the session server, with its JSON errors turned into typed ones. */

/** What `/connect` returns. */
export interface ConnectResponse {
  url: string;
  room: string;
  token: string;
  identity: string;
  session_id: string;
}

/** A refusal or failure the page can show as is. */
export class SessionApiError extends Error {
  constructor(
    message: string,
    readonly reason: string,
    readonly status: number | null,
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
    this.name = "SessionApiError";
  }
}

export const ROOM_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;

/** A fresh room name for a new tab: unguessable, within the server's rules. */
export function freshRoomName(random: () => string = () => crypto.randomUUID()): string {
  return `room-${random().replace(/-/g, "").slice(0, 16)}`;
}

/** Ask the server for a bot in `room` and a token to join it. */
export async function requestSession(
  room: string,
  identity: string | undefined,
  fetchImpl: typeof fetch = fetch,
): Promise<ConnectResponse> {
  let response: Response;
  try {
    response = await fetchImpl("/connect", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(identity ? { room, identity } : { room }),
    });
  } catch {
    throw new SessionApiError(
      "The voice agent server cannot be reached. Check your connection and try again.",
      "unreachable",
      null,
    );
  }
  const body = (await response.json().catch(() => null)) as Record<string, unknown> | null;
  if (!response.ok) {
    const retryAfter = Number(response.headers.get("Retry-After"));
    const detail = typeof body?.detail === "string" ? body.detail : `HTTP ${response.status}`;
    const reason = typeof body?.reason === "string" ? body.reason : "http_error";
    throw new SessionApiError(
      response.status >= 500 && reason === "http_error"
        ? "The voice agent server had a problem. Try again in a moment."
        : capitalize(detail),
      reason,
      response.status,
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null,
    );
  }
  if (!body || typeof body.url !== "string" || typeof body.token !== "string") {
    throw new SessionApiError("The server's answer was not understood.", "bad_response", 200);
  }
  return body as unknown as ConnectResponse;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? "" : ".");
}
