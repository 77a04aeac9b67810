import {
  DeviceError,
  PipecatClient,
  RTVIError,
  RTVIMessage,
  type TransportState,
  TransportStartError,
} from "@pipecat-ai/client-js";
import { DisconnectReason, RoomEvent } from "livekit-client";
import { describe, expect, it, vi } from "vitest";

import { LiveKitTransport, RTVI_LABEL } from "../src/livekitTransport";
import { FakeRoom, fakeDeps, MICS } from "./fakeLiveKit";

const PARAMS = { url: "ws://127.0.0.1:7880", token: "jwt-token" };

function setUp(overrides = {}) {
  const room = new FakeRoom();
  const { deps, mic } = fakeDeps(room, overrides);
  const transport = new LiveKitTransport(deps);
  const states: TransportState[] = [];
  const received: RTVIMessage[] = [];
  const callbacks = {
    onTransportStateChanged: vi.fn((s: TransportState) => states.push(s)),
    onConnected: vi.fn(),
    onDisconnected: vi.fn(),
    onBotConnected: vi.fn(),
    onBotDisconnected: vi.fn(),
    onTrackStarted: vi.fn(),
    onError: vi.fn(),
    onDeviceError: vi.fn(),
    onAvailableMicsUpdated: vi.fn(),
    onMicUpdated: vi.fn(),
  };
  transport.initialize({ transport, callbacks }, (m) => received.push(m));
  return { room, transport, states, received, callbacks, mic };
}

async function connected() {
  const setup = setUp();
  await setup.transport.initDevices();
  await setup.transport.connect(PARAMS);
  return setup;
}

describe("connect and disconnect", () => {
  it("goes through the states in order and publishes the microphone", async () => {
    const { room, states, callbacks, mic } = await connected();
    expect(states).toEqual(["initializing", "initialized", "connecting", "connected"]);
    expect(room.connectedWith).toEqual([PARAMS.url, PARAMS.token]);
    expect(room.published).toEqual([mic.track]);
    expect(callbacks.onConnected).toHaveBeenCalledOnce();
    expect(callbacks.onAvailableMicsUpdated).toHaveBeenCalledWith(MICS);
    expect(callbacks.onMicUpdated).toHaveBeenCalledWith(MICS[0]);
  });

  it("reports the bot when it joins and its audio as a track", async () => {
    const { room, transport, callbacks } = await connected();
    room.botArrives();
    expect(callbacks.onBotConnected).toHaveBeenCalledWith(
      expect.objectContaining({ id: "agent", local: false }),
    );
    expect(callbacks.onTrackStarted).toHaveBeenCalledOnce();
    expect(transport.tracks().bot?.audio).toBeDefined();
  });

  it("leaves the room and releases the microphone on disconnect, without an error", async () => {
    const { room, transport, states, callbacks, mic } = await connected();
    await transport.disconnect();
    room.emit(RoomEvent.Disconnected, DisconnectReason.CLIENT_INITIATED);
    expect(states.slice(-2)).toEqual(["disconnecting", "disconnected"]);
    expect(room.disconnects).toBe(1);
    expect(mic.calls).toContain("stop");
    expect(callbacks.onError).not.toHaveBeenCalled();
  });

  it("mutes and unmutes the published microphone", async () => {
    const { transport, mic } = await connected();
    transport.enableMic(false);
    expect(transport.isMicEnabled).toBe(false);
    transport.enableMic(true);
    await Promise.resolve();
    expect(mic.calls).toEqual(["mute", "unmute"]);
  });
});

describe("RTVI messages", () => {
  it("passes RTVI data packets from the bot to the client, unchanged", async () => {
    const { room, received } = await connected();
    room.receive({ id: "1", label: RTVI_LABEL, type: "bot-ready", data: { version: "2.1.0" } });
    room.receive({
      id: "2",
      label: RTVI_LABEL,
      type: "server-message",
      data: { type: "turn-metrics", turn: 1 },
    });
    expect(received.map((m) => [m.type, m.data])).toEqual([
      ["bot-ready", { version: "2.1.0" }],
      ["server-message", { type: "turn-metrics", turn: 1 }],
    ]);
  });

  it("ignores data that is not RTVI", async () => {
    const { room, received } = await connected();
    room.receive("not json {");
    room.receive({ label: "someone-else", type: "x" });
    room.receive([1, 2, 3]);
    expect(received).toEqual([]);
  });

  it("sends client messages as reliable RTVI data packets", async () => {
    const { room, transport } = await connected();
    transport.sendMessage(new RTVIMessage("client-message", { t: "hello" }, "m-1"));
    expect(room.sent).toEqual([
      {
        payload: { id: "m-1", label: RTVI_LABEL, type: "client-message", data: { t: "hello" } },
        options: { reliable: true },
      },
    ]);
  });

  it("says client-ready only once the bot's audio can be heard", async () => {
    const { room, transport, states } = await connected();
    const ready = transport.sendReadyMessage();
    await Promise.resolve();
    expect(room.sent).toEqual([]);
    room.botArrives();
    await ready;
    expect(states.at(-1)).toBe("ready");
    expect(room.sent.map((s) => (s.payload as { type: string }).type)).toEqual(["client-ready"]);
  });

  it("completes a PipecatClient connect when the bot answers bot-ready", async () => {
    // The SDK reads the user agent for its about-client message.
    vi.stubGlobal("window", { navigator: { userAgent: "vitest" } });
    const room = new FakeRoom();
    const { deps } = fakeDeps(room);
    const client = new PipecatClient({ transport: new LiveKitTransport(deps), enableMic: true });
    const connecting = client.connect(PARAMS);
    await vi.waitFor(() => expect(room.state).toBe("connected"));
    room.botArrives();
    await vi.waitFor(() => expect(room.sent.length).toBe(1));
    const ready = room.sent[0].payload as { id: string; type: string };
    expect(ready.type).toBe("client-ready");
    room.receive({ id: ready.id, label: RTVI_LABEL, type: "bot-ready", data: { version: "2.1.0" } });
    await expect(connecting).resolves.toBeDefined();
    expect(client.state).toBe("ready");
    await client.disconnect();
    vi.unstubAllGlobals();
  });
});

describe("error paths", () => {
  it("refuses connection params without a token or a websocket url", async () => {
    const { transport } = setUp();
    expect(() => transport._validateConnectionParams({ url: PARAMS.url })).toThrow(RTVIError);
    expect(() =>
      transport._validateConnectionParams({ url: "http://x", token: "t" }),
    ).toThrow(/ws:\/\//);
    expect(() => transport._validateConnectionParams(undefined)).toThrow(RTVIError);
  });

  it("turns a failed join into TransportStartError and the error state", async () => {
    const { room, transport, states } = setUp();
    room.failConnect = new Error("could not establish signal connection");
    await expect(transport.connect(PARAMS)).rejects.toBeInstanceOf(TransportStartError);
    expect(states.at(-1)).toBe("error");
  });

  it("reports a denied microphone as a permissions DeviceError", async () => {
    const denied = Object.assign(new Error("Permission denied"), { name: "NotAllowedError" });
    const { transport, callbacks } = setUp({
      createMicTrack: async () => {
        throw denied;
      },
    });
    const error = await transport.initDevices().catch((e) => e);
    expect(error).toBeInstanceOf(DeviceError);
    expect(error.type).toBe("permissions");
    expect(callbacks.onDeviceError).toHaveBeenCalledWith(error);
  });

  it("reports a lost connection as a fatal error, then disconnected", async () => {
    const { room, callbacks, states } = await connected();
    room.emit(RoomEvent.Disconnected, DisconnectReason.SERVER_SHUTDOWN);
    expect(states.at(-1)).toBe("disconnected");
    const error = callbacks.onError.mock.calls[0][0] as RTVIMessage;
    expect(error.type).toBe("error");
    expect(error.data).toMatchObject({ message: "connection lost (SERVER_SHUTDOWN)", fatal: true });
    expect(callbacks.onDisconnected).toHaveBeenCalledOnce();
  });

  it("says when the connection drops and when it is back", async () => {
    const room = new FakeRoom();
    const { deps } = fakeDeps(room);
    const transport = new LiveKitTransport(deps);
    const seen: string[] = [];
    transport.initialize(
      {
        transport,
        callbacks: {
          onReconnecting: () => seen.push("reconnecting"),
          onReconnected: () => seen.push("reconnected"),
        } as never,
      },
      () => undefined,
    );
    await transport.connect(PARAMS);
    room.emit(RoomEvent.Reconnecting);
    room.emit(RoomEvent.Reconnected);
    expect(seen).toEqual(["reconnecting", "reconnected"]);
  });

  it("tells the page when the bot leaves", async () => {
    const { room, callbacks } = await connected();
    const bot = room.botArrives();
    room.emit(RoomEvent.ParticipantDisconnected, bot);
    expect(callbacks.onBotDisconnected).toHaveBeenCalledOnce();
  });

  it("refuses to send while not connected", () => {
    const { transport } = setUp();
    expect(() => transport.sendMessage(RTVIMessage.clientReady())).toThrow(/not connected/);
  });
});
