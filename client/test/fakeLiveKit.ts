/** Stand-ins for livekit-client's Room, participants and tracks, enough for the transport. */
import { EventEmitter } from "node:events";

import type { LocalAudioTrack, Room } from "livekit-client";
import { RoomEvent, Track } from "livekit-client";

import type { LiveKitTransportDeps } from "../src/livekitTransport";

export class FakeParticipant {
  readonly isLocal = false;
  constructor(
    readonly identity: string,
    readonly isAgent: boolean,
    readonly name = identity,
  ) {}
}

export class FakeRemoteTrack {
  readonly kind = Track.Kind.Audio;
  readonly mediaStreamTrack = { id: "bot-audio" } as unknown as MediaStreamTrack;
  attached = 0;
  attach() {
    this.attached += 1;
    return { dataset: {} as Record<string, string>, remove() {} } as unknown as HTMLMediaElement;
  }
}

export class FakeRoom extends EventEmitter {
  state = "disconnected";
  connectedWith: [string, string] | null = null;
  failConnect: Error | null = null;
  readonly remoteParticipants = new Map<string, FakeParticipant>();
  readonly published: unknown[] = [];
  readonly sent: Array<{ payload: unknown; options: unknown }> = [];
  disconnects = 0;
  readonly localParticipant = {
    publishTrack: async (track: unknown) => {
      this.published.push(track);
    },
    unpublishTrack: async () => undefined,
    publishData: async (payload: Uint8Array, options: unknown) => {
      this.sent.push({ payload: JSON.parse(new TextDecoder().decode(payload)), options });
    },
  };

  async connect(url: string, token: string): Promise<void> {
    if (this.failConnect) throw this.failConnect;
    this.connectedWith = [url, token];
    this.state = "connected";
  }

  async disconnect(): Promise<void> {
    this.disconnects += 1;
    this.state = "disconnected";
  }

  /** The bot joins and its audio track is subscribed. */
  botArrives(identity = "agent"): FakeParticipant {
    const bot = new FakeParticipant(identity, true);
    this.remoteParticipants.set(identity, bot);
    this.emit(RoomEvent.ParticipantConnected, bot);
    this.emit(RoomEvent.TrackSubscribed, new FakeRemoteTrack(), {}, bot);
    return bot;
  }

  /** A data packet from the bot. */
  receive(message: unknown): void {
    const payload = new TextEncoder().encode(
      typeof message === "string" ? message : JSON.stringify(message),
    );
    this.emit(RoomEvent.DataReceived, payload);
  }
}

export function fakeMic() {
  const calls: string[] = [];
  const track = {
    mediaStreamTrack: { getSettings: () => ({ deviceId: "mic-1" }) },
    mute: async () => void calls.push("mute"),
    unmute: async () => void calls.push("unmute"),
    stop: () => void calls.push("stop"),
  } as unknown as LocalAudioTrack;
  return { track, calls };
}

export const MICS = [
  { deviceId: "mic-1", kind: "audioinput", label: "Built-in", groupId: "g" },
  { deviceId: "mic-2", kind: "audioinput", label: "Headset", groupId: "g" },
] as MediaDeviceInfo[];

export function fakeDeps(room: FakeRoom, overrides: Partial<LiveKitTransportDeps> = {}) {
  const mic = fakeMic();
  const deps: LiveKitTransportDeps = {
    createRoom: () => room as unknown as Room,
    createMicTrack: async () => mic.track,
    listDevices: async () => MICS,
    createMeter: () => null,
    audioContainer: () => null,
    ...overrides,
  };
  return { deps, mic };
}
