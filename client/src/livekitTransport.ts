/**
 * A Pipecat client `Transport` over LiveKit (livekit-client 2.x).
 *
 * No LiveKit transport for the Pipecat JS SDK is published, so this one joins the room
 * the session server's `/connect` named, publishes the microphone, plays the bot's
 * audio, and carries RTVI messages as JSON data packets both ways (the same packets
 * Pipecat's server-side LiveKitTransport reads and writes).
 */
import {
  DeviceError,
  type PipecatClientOptions,
  RTVIError,
  type RTVIEventCallbacks,
  RTVIMessage,
  type Participant as RTVIParticipant,
  type Tracks,
  Transport,
  TransportStartError,
  type TransportState,
  UnsupportedFeatureError,
} from "@pipecat-ai/client-js";
import {
  createLocalAudioTrack,
  DefaultReconnectPolicy,
  DisconnectReason,
  type LocalAudioTrack,
  type Participant,
  type RemoteParticipant,
  type RemoteTrack,
  Room,
  RoomEvent,
  Track,
} from "livekit-client";

import { LevelMeter } from "./levelMeter";

export const RTVI_LABEL = "rtvi-ai";

/** What `/connect` returns and the transport needs. */
export interface LiveKitConnectionParams {
  url: string;
  token: string;
}

/** The RTVI callbacks, plus what only a LiveKit connection does: resume after a drop. */
export type LiveKitTransportCallbacks = RTVIEventCallbacks &
  Partial<{
    onReconnecting: () => void;
    onReconnected: () => void;
  }>;

/**
 * Retries after the connection drops, about ten seconds in all: longer than that, the
 * conversation is better restarted than resumed.
 */
export const RECONNECT_DELAYS_MS = [0, 300, 1200, 2700, 4800];

/** Collaborators, injectable so tests can stand in for LiveKit and the browser. */
export interface LiveKitTransportDeps {
  createRoom: () => Room;
  createMicTrack: (deviceId?: string) => Promise<LocalAudioTrack>;
  listDevices: () => Promise<MediaDeviceInfo[]>;
  createMeter: (track: MediaStreamTrack, onLevel: (level: number) => void) => LevelMeter | null;
  /** Where remote audio elements are attached so the page plays them. */
  audioContainer: () => HTMLElement | null;
}

const browserDeps: LiveKitTransportDeps = {
  createRoom: () =>
    new Room({
      adaptiveStream: false,
      dynacast: false,
      reconnectPolicy: new DefaultReconnectPolicy(RECONNECT_DELAYS_MS),
    }),
  createMicTrack: (deviceId) =>
    createLocalAudioTrack({
      deviceId,
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
    }),
  listDevices: () => Room.getLocalDevices("audioinput", false),
  createMeter: (track, onLevel) => LevelMeter.start(track, onLevel),
  audioContainer: () => document.body,
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class LiveKitTransport extends Transport {
  declare protected _callbacks: LiveKitTransportCallbacks;
  private readonly deps: LiveKitTransportDeps;
  private room: Room | null = null;
  private micTrack: LocalAudioTrack | null = null;
  private micEnabled = true;
  private selectedMicInfo: MediaDeviceInfo | Record<string, never> = {};
  private botAudio: MediaStreamTrack | undefined;
  private botAudioElement: HTMLMediaElement | null = null;
  private meters: LevelMeter[] = [];
  private leaving = false;

  constructor(deps: Partial<LiveKitTransportDeps> = {}) {
    super();
    this.deps = { ...browserDeps, ...deps };
    this._state = "disconnected";
  }

  initialize(
    options: PipecatClientOptions,
    messageHandler: (ev: RTVIMessage) => void,
  ): void {
    this._options = options;
    this._callbacks = (options.callbacks ?? {}) as LiveKitTransportCallbacks;
    this._onMessage = messageHandler;
    this.micEnabled = options.enableMic ?? true;
    this.state = "disconnected";
  }

  get state(): TransportState {
    return this._state;
  }

  set state(state: TransportState) {
    if (this._state === state) return;
    this._state = state;
    this._callbacks.onTransportStateChanged?.(state);
  }

  async initDevices(): Promise<void> {
    this.state = "initializing";
    try {
      await this.openMic(this.selectedMicInfo.deviceId);
    } catch (e) {
      this.state = "error";
      const error = micError(e);
      this._callbacks.onDeviceError?.(error);
      throw error;
    }
    const mics = await this.deps.listDevices();
    this._callbacks.onAvailableMicsUpdated?.(mics);
    this.state = "initialized";
  }

  _validateConnectionParams(connectParams?: unknown): LiveKitConnectionParams {
    const params = connectParams as Partial<LiveKitConnectionParams> | undefined;
    if (!params || typeof params !== "object") {
      throw new RTVIError("LiveKit connection needs {url, token}");
    }
    if (typeof params.url !== "string" || !/^wss?:\/\//.test(params.url)) {
      throw new RTVIError("LiveKit url must start with ws:// or wss://");
    }
    if (typeof params.token !== "string" || params.token.length === 0) {
      throw new RTVIError("LiveKit token is missing");
    }
    return { url: params.url, token: params.token };
  }

  async _connect(connectParams?: LiveKitConnectionParams): Promise<void> {
    const params = this._validateConnectionParams(connectParams);
    this.state = "connecting";
    this.leaving = false;
    const room = this.deps.createRoom();
    this.room = room;
    this.listen(room);
    try {
      await room.connect(params.url, params.token, { autoSubscribe: true });
      if (this.micTrack) {
        await room.localParticipant.publishTrack(this.micTrack, {
          source: Track.Source.Microphone,
        });
        if (!this.micEnabled) await this.micTrack.mute();
      }
    } catch (e) {
      this.room = null;
      room.removeAllListeners();
      await room.disconnect();
      this.state = "error";
      throw new TransportStartError(`could not join the room: ${errorText(e)}`);
    }
    if (this._abortController?.signal.aborted) return;
    this.state = "connected";
    this._callbacks.onConnected?.();
    for (const participant of room.remoteParticipants.values()) {
      this.participantJoined(participant);
    }
  }

  /** Tell the bot we are listening, once its audio can be heard. */
  async sendReadyMessage(): Promise<void> {
    const room = this.room;
    if (!room) return;
    if (!this.botAudio) {
      await new Promise<void>((resolve) => {
        const onTrack = (track: RemoteTrack, _: unknown, participant: RemoteParticipant) => {
          if (track.kind === Track.Kind.Audio && isBot(participant)) {
            room.off(RoomEvent.TrackSubscribed, onTrack);
            resolve();
          }
        };
        room.on(RoomEvent.TrackSubscribed, onTrack);
      });
    }
    this.state = "ready";
    this.sendMessage(RTVIMessage.clientReady());
  }

  async _disconnect(): Promise<void> {
    this.state = "disconnecting";
    this.leaving = true;
    const room = this.room;
    this.room = null;
    this.stopMeters();
    this.detachBotAudio();
    this.micTrack?.stop();
    this.micTrack = null;
    if (room) {
      await room.disconnect();
      room.removeAllListeners();
    }
    this.state = "disconnected";
  }

  sendMessage(message: RTVIMessage): void {
    const room = this.room;
    if (!room || room.state !== "connected") {
      throw new RTVIError("not connected: the message was not sent");
    }
    const payload = encoder.encode(
      JSON.stringify({ id: message.id, label: RTVI_LABEL, type: message.type, data: message.data }),
    );
    if (payload.byteLength > this.maxMessageSize) {
      throw new RTVIError(`message of ${payload.byteLength} bytes is over the limit`);
    }
    void room.localParticipant.publishData(payload, { reliable: true });
  }

  async getAllMics(): Promise<MediaDeviceInfo[]> {
    return this.deps.listDevices();
  }

  async getAllCams(): Promise<MediaDeviceInfo[]> {
    return [];
  }

  async getAllSpeakers(): Promise<MediaDeviceInfo[]> {
    return [];
  }

  updateMic(micId: string): void {
    void this.switchMic(micId).catch((e) => this._callbacks.onDeviceError?.(micError(e)));
  }

  updateCam(): void {
    throw new UnsupportedFeatureError("camera", "LiveKitTransport");
  }

  updateSpeaker(): void {
    throw new UnsupportedFeatureError("speaker selection", "LiveKitTransport");
  }

  get selectedMic(): MediaDeviceInfo | Record<string, never> {
    return this.selectedMicInfo;
  }

  get selectedCam(): Record<string, never> {
    return {};
  }

  get selectedSpeaker(): Record<string, never> {
    return {};
  }

  enableMic(enable: boolean): void {
    this.micEnabled = enable;
    if (!this.micTrack) return;
    void (enable ? this.micTrack.unmute() : this.micTrack.mute());
  }

  get isMicEnabled(): boolean {
    return this.micEnabled;
  }

  enableCam(enable: boolean): void {
    if (enable) throw new UnsupportedFeatureError("camera", "LiveKitTransport");
  }

  get isCamEnabled(): boolean {
    return false;
  }

  enableScreenShare(enable: boolean): void {
    if (enable) throw new UnsupportedFeatureError("screen share", "LiveKitTransport");
  }

  get isSharingScreen(): boolean {
    return false;
  }

  tracks(): Tracks {
    return {
      local: { audio: this.micTrack?.mediaStreamTrack },
      bot: this.botAudio ? { audio: this.botAudio } : undefined,
    };
  }

  private async openMic(deviceId?: string): Promise<void> {
    this.micTrack?.stop();
    this.micTrack = await this.deps.createMicTrack(deviceId);
    const settings = this.micTrack.mediaStreamTrack.getSettings();
    const mics = await this.deps.listDevices();
    const chosen = mics.find((m) => m.deviceId === (deviceId ?? settings.deviceId));
    this.selectedMicInfo = chosen ?? {};
    if (chosen) this._callbacks.onMicUpdated?.(chosen);
    this.meter(this.micTrack.mediaStreamTrack, (level) =>
      this._callbacks.onLocalAudioLevel?.(level),
    );
  }

  private async switchMic(deviceId: string): Promise<void> {
    const previous = this.micTrack;
    await this.openMic(deviceId);
    if (this.room && this.micTrack) {
      if (previous) await this.room.localParticipant.unpublishTrack(previous);
      await this.room.localParticipant.publishTrack(this.micTrack, {
        source: Track.Source.Microphone,
      });
      if (!this.micEnabled) await this.micTrack.mute();
    }
  }

  private listen(room: Room): void {
    room
      .on(RoomEvent.DataReceived, (payload: Uint8Array) => this.received(payload))
      .on(RoomEvent.ParticipantConnected, (p: RemoteParticipant) => this.participantJoined(p))
      .on(RoomEvent.ParticipantDisconnected, (p: RemoteParticipant) => this.participantLeft(p))
      .on(RoomEvent.TrackSubscribed, (track: RemoteTrack, _pub, p: RemoteParticipant) =>
        this.trackStarted(track, p),
      )
      .on(RoomEvent.TrackUnsubscribed, (track: RemoteTrack, _pub, p: RemoteParticipant) =>
        this.trackStopped(track, p),
      )
      .on(RoomEvent.Reconnecting, () => this._callbacks.onReconnecting?.())
      .on(RoomEvent.Reconnected, () => this._callbacks.onReconnected?.())
      .on(RoomEvent.Disconnected, (reason?: DisconnectReason) => this.lost(reason));
  }

  private received(payload: Uint8Array): void {
    let message: unknown;
    try {
      message = JSON.parse(decoder.decode(payload));
    } catch {
      return; // Not an RTVI message: other data on the room is not ours to read.
    }
    if (isRTVIMessage(message)) {
      this._onMessage({ id: message.id, label: RTVI_LABEL, type: message.type, data: message.data });
    }
  }

  private participantJoined(participant: RemoteParticipant): void {
    const p = toParticipant(participant);
    this._callbacks.onParticipantJoined?.(p);
    if (isBot(participant)) this._callbacks.onBotConnected?.(p);
  }

  private participantLeft(participant: RemoteParticipant): void {
    const p = toParticipant(participant);
    this._callbacks.onParticipantLeft?.(p);
    if (isBot(participant)) {
      this.detachBotAudio();
      this._callbacks.onBotDisconnected?.(p);
    }
  }

  private trackStarted(track: RemoteTrack, participant: RemoteParticipant): void {
    if (track.kind !== Track.Kind.Audio || !isBot(participant)) return;
    this.detachBotAudio();
    this.botAudio = track.mediaStreamTrack;
    const element = track.attach();
    element.dataset.role = "bot-audio";
    this.deps.audioContainer()?.appendChild(element);
    this.botAudioElement = element;
    this.meter(track.mediaStreamTrack, (level) =>
      this._callbacks.onRemoteAudioLevel?.(level, toParticipant(participant)),
    );
    this._callbacks.onTrackStarted?.(track.mediaStreamTrack, toParticipant(participant));
  }

  private trackStopped(track: RemoteTrack, participant: RemoteParticipant): void {
    if (track.mediaStreamTrack === this.botAudio) this.detachBotAudio();
    this._callbacks.onTrackStopped?.(track.mediaStreamTrack, toParticipant(participant));
  }

  /** The room went away: by our own disconnect, or lost (network, server, kicked). */
  private lost(reason?: DisconnectReason): void {
    if (this.leaving) return;
    this.room = null;
    this.stopMeters();
    this.detachBotAudio();
    this.state = "disconnected";
    if (reason !== DisconnectReason.CLIENT_INITIATED) {
      this._callbacks.onError?.(
        RTVIMessage.error(`connection lost (${disconnectReasonName(reason)})`, true),
      );
    }
    this._callbacks.onDisconnected?.();
  }

  private meter(track: MediaStreamTrack, onLevel: (level: number) => void): void {
    const meter = this.deps.createMeter(track, onLevel);
    if (meter) this.meters.push(meter);
  }

  private stopMeters(): void {
    for (const meter of this.meters) meter.stop();
    this.meters = [];
  }

  private detachBotAudio(): void {
    this.botAudioElement?.remove();
    this.botAudioElement = null;
    this.botAudio = undefined;
  }
}

function isBot(participant: Participant): boolean {
  return participant.isAgent;
}

function toParticipant(participant: Participant): RTVIParticipant {
  return { id: participant.identity, local: participant.isLocal, name: participant.name ?? "" };
}

function isRTVIMessage(value: unknown): value is RTVIMessage {
  if (typeof value !== "object" || value === null) return false;
  const message = value as Record<string, unknown>;
  return message.label === RTVI_LABEL && typeof message.type === "string";
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function micError(e: unknown): DeviceError {
  const name = e instanceof Error ? e.name : "";
  if (name === "NotAllowedError" || name === "SecurityError") {
    return new DeviceError(["mic"], "permissions", "microphone access was denied");
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") {
    return new DeviceError(["mic"], "not-found", "no microphone was found");
  }
  if (name === "NotReadableError") {
    return new DeviceError(["mic"], "in-use", "the microphone is in use by another program");
  }
  return new DeviceError(["mic"], "unknown", `microphone failed: ${errorText(e)}`);
}

function disconnectReasonName(reason?: DisconnectReason): string {
  return reason === undefined ? "unknown" : (DisconnectReason[reason] ?? String(reason));
}
