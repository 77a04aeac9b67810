/**
 * One conversation with the voice agent: owns the PipecatClient and turns its events
 * into what the page shows. All callbacks live in one object, in `createClient`.
 */
import {
  type BotOutputData,
  DeviceError,
  PipecatClient,
  type RTVIMessage,
  type TranscriptData,
} from "@pipecat-ai/client-js";

import { LiveKitTransport, type LiveKitTransportCallbacks } from "./livekitTransport";
import { requestSession, SessionApiError } from "./sessionApi";
import { isTurnMetrics, type TurnMetrics } from "./turnMetrics";

export type Phase =
  | "idle"
  | "connecting"
  | "waiting-for-agent"
  | "listening"
  | "user-speaking"
  | "agent-speaking"
  | "reconnecting"
  | "lost";

/** What the page offers after an error. */
export type Recovery = "retry" | "reconnect" | "dismiss";

/** How the session talks to the page. */
export interface SessionView {
  phase(phase: Phase): void;
  roomJoined(room: string): void;
  userTranscript(text: string, final: boolean): void;
  /** The agent starts a new reply: its next words begin a new line. */
  agentReplyStarted(): void;
  /** A piece of what the agent says, as it starts to say it. */
  agentSaid(text: string): void;
  turnMetrics(metrics: TurnMetrics): void;
  error(message: string, recovery: Recovery): void;
  micLevel(level: number): void;
  agentLevel(level: number): void;
  mics(devices: MediaDeviceInfo[], selectedId: string | undefined): void;
}

/** How long the agent may take to join and say it is ready. */
export const AGENT_READY_TIMEOUT_MS = 30_000;

export class VoiceSession {
  private client: PipecatClient | null = null;
  private room: string | null = null;
  private identity: string | undefined;
  private leaving = false;
  private agentSpeaking = false;

  constructor(
    private readonly view: SessionView,
    private readonly makeTransport: () => LiveKitTransport = () => new LiveKitTransport(),
    private readonly fetchImpl: typeof fetch = (...args) => fetch(...args),
  ) {}

  /** Get the microphone, ask the server for an agent, join the room, wait for the agent. */
  async connect(room: string): Promise<void> {
    if (this.client) return;
    this.leaving = false;
    this.view.phase("connecting");
    const client = this.createClient();
    this.client = client;
    try {
      await client.initDevices();
      const session = await requestSession(room, this.identity, this.fetchImpl);
      this.room = session.room;
      // The same identity on reconnect gets this room back instead of a 409.
      this.identity = session.identity;
      this.view.roomJoined(session.room);
      this.view.phase("waiting-for-agent");
      await withTimeout(
        client.connect({ url: session.url, token: session.token }),
        AGENT_READY_TIMEOUT_MS,
        "The voice agent did not join the room. Try connecting again.",
      );
      this.view.phase("listening");
    } catch (e) {
      await this.teardown();
      this.view.phase("idle");
      this.view.error(describe(e), recoveryFor(e));
    }
  }

  /** Rejoin the room this tab last used, e.g. after the connection dropped. */
  async reconnect(): Promise<void> {
    if (this.room) await this.connect(this.room);
  }

  async disconnect(): Promise<void> {
    this.leaving = true;
    await this.teardown();
    this.view.phase("idle");
  }

  setMicEnabled(enabled: boolean): void {
    this.client?.enableMic(enabled);
  }

  selectMic(deviceId: string): void {
    this.client?.updateMic(deviceId);
  }

  private async teardown(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.agentSpeaking = false;
    if (client) await client.disconnect().catch(() => undefined);
  }

  private createClient(): PipecatClient {
    const view = this.view;
    const callbacks: LiveKitTransportCallbacks = {
      onReconnecting: () => view.phase("reconnecting"),
      onReconnected: () => view.phase(this.agentSpeaking ? "agent-speaking" : "listening"),
      onUserStartedSpeaking: () => view.phase("user-speaking"),
      onUserStoppedSpeaking: () => view.phase(this.agentSpeaking ? "agent-speaking" : "listening"),
      onBotStartedSpeaking: () => {
        this.agentSpeaking = true;
        view.phase("agent-speaking");
      },
      onBotStoppedSpeaking: () => {
        this.agentSpeaking = false;
        view.phase("listening");
      },
      onUserTranscript: (data: TranscriptData) => view.userTranscript(data.text, data.final),
      onBotLlmStarted: () => view.agentReplyStarted(),
      // What the agent says, the greeting included (the LLM never sees it, so it has no
      // bot-llm-text). Each piece is announced once as "new"; its later messages only
      // follow its playback.
      onBotOutput: (data: BotOutputData) => {
        if (data.spoken_status === "new") view.agentSaid(data.text);
      },
      onServerMessage: (data: unknown) => {
        if (isTurnMetrics(data)) view.turnMetrics(data);
      },
      onError: (message: RTVIMessage) => this.onError(message),
      onLocalAudioLevel: (level) => view.micLevel(level),
      onRemoteAudioLevel: (level) => view.agentLevel(level),
      onAvailableMicsUpdated: (mics) =>
        view.mics(mics, this.client?.selectedMic.deviceId as string | undefined),
      onMicUpdated: (mic) => view.mics([], mic.deviceId),
      onBotDisconnected: () => {
        if (!this.leaving && this.client) {
          view.error("The voice agent left the conversation.", "reconnect");
        }
      },
      onDisconnected: () => {
        if (!this.leaving && this.client) {
          this.client = null;
          view.phase("lost");
        }
      },
    };
    return new PipecatClient({
      transport: this.makeTransport(),
      enableMic: true,
      enableCam: false,
      callbacks,
    });
  }

  private onError(message: RTVIMessage): void {
    const data = message.data as { error?: string; message?: string; fatal?: boolean } | undefined;
    const text = data?.error ?? data?.message ?? "Something went wrong.";
    if (data?.fatal) {
      this.view.error(`${capitalize(text)}.`, "reconnect");
    } else {
      // An engine failed during a turn; the conversation goes on.
      this.view.error(`${capitalize(text)} You can keep talking.`, "dismiss");
    }
  }
}

function describe(e: unknown): string {
  if (e instanceof SessionApiError) {
    return e.retryAfterS && e.status === 503 && !e.message.includes("try again in")
      ? `${e.message} Try again in ${e.retryAfterS} s.`
      : e.message;
  }
  if (e instanceof DeviceError) {
    return e.type === "permissions"
      ? "Microphone access was denied. Allow it in your browser's site settings, then connect again."
      : `${capitalize(e.message)}.`;
  }
  if (e instanceof Error) return e.message;
  return String(e);
}

function recoveryFor(e: unknown): Recovery {
  return e instanceof SessionApiError && e.reason === "room_busy" ? "dismiss" : "retry";
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1).replace(/\.$/, "");
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
