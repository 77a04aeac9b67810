import { describe, expect, it } from "vitest";

import { freshRoomName, requestSession, ROOM_PATTERN, SessionApiError } from "../src/sessionApi";

function answer(status: number, body: unknown, headers: Record<string, string> = {}) {
  return async () =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "Content-Type": "application/json", ...headers },
    });
}

describe("requestSession", () => {
  it("posts the room and returns what the transport needs", async () => {
    let sent: RequestInit | undefined;
    const body = { url: "ws://x", room: "den", token: "t", identity: "u", session_id: "s" };
    const fetchImpl = (async (_: unknown, init?: RequestInit) => {
      sent = init;
      return answer(200, body)();
    }) as typeof fetch;
    await expect(requestSession("den", undefined, fetchImpl)).resolves.toEqual(body);
    expect(JSON.parse(String(sent?.body))).toEqual({ room: "den" });
  });

  it("shows the capacity message with its retry time", async () => {
    const error = await requestSession(
      "den",
      undefined,
      answer(
        503,
        { detail: "all 10 voice agents are busy; try again in 10s", reason: "at_capacity" },
        { "Retry-After": "10" },
      ) as typeof fetch,
    ).catch((e) => e);
    expect(error).toBeInstanceOf(SessionApiError);
    expect(error.message).toBe("All 10 voice agents are busy; try again in 10s.");
    expect([error.reason, error.status, error.retryAfterS]).toEqual(["at_capacity", 503, 10]);
  });

  it("passes the busy-room message on", async () => {
    const error = await requestSession(
      "den",
      "ada",
      answer(409, { detail: "room 'den' already has a conversation", reason: "room_busy" }) as typeof fetch,
    ).catch((e) => e);
    expect(error.reason).toBe("room_busy");
    expect(error.message).toMatch(/^Room 'den' already has a conversation/);
  });

  it("says so when the server cannot be reached", async () => {
    const unreachable = (async () => {
      throw new TypeError("Failed to fetch");
    }) as typeof fetch;
    const error = await requestSession("den", undefined, unreachable).catch((e) => e);
    expect(error.reason).toBe("unreachable");
    expect(error.message).toMatch(/cannot be reached/);
  });

  it("does not show a bare 500 page", async () => {
    const broken = (async () => new Response("<html>oops</html>", { status: 502 })) as typeof fetch;
    const error = await requestSession("den", undefined, broken).catch((e) => e);
    expect(error.message).toMatch(/had a problem/);
  });
});

describe("room names", () => {
  it("makes fresh names the server accepts, different every time", () => {
    const names = new Set(Array.from({ length: 50 }, () => freshRoomName()));
    expect(names.size).toBe(50);
    for (const name of names) expect(ROOM_PATTERN.test(name)).toBe(true);
  });
});
