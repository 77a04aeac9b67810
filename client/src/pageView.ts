/** The page: renders what the session reports, and keeps a timeline for diagnostics. */
import type { Phase, Recovery, SessionView } from "./voiceSession";
import { type TurnMetrics, WATERFALL_ROWS } from "./turnMetrics";

const PHASE_TEXT: Record<Phase, string> = {
  idle: "Not connected",
  connecting: "Connecting…",
  "waiting-for-agent": "Waiting for the agent…",
  listening: "Listening",
  "user-speaking": "You are speaking",
  "agent-speaking": "Agent speaking",
  reconnecting: "Connection dropped, reconnecting…",
  lost: "Connection lost",
};

const RECOVERY_TEXT: Record<Recovery, string> = {
  retry: "Try again",
  reconnect: "Reconnect",
  dismiss: "Dismiss",
};

/** Timestamped phases and agent audio levels, readable by tests and from the console. */
export interface Timeline {
  phases: Array<[number, Phase]>;
  agentLevels: Array<[number, number]>;
  userTranscripts: Array<[number, string, boolean]>;
}

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element as T;
}

export class PageView implements SessionView {
  readonly timeline: Timeline = { phases: [], agentLevels: [], userTranscripts: [] };
  onRecovery: (recovery: Recovery) => void = () => undefined;

  private readonly status = byId<HTMLParagraphElement>("status");
  private readonly roomInput = byId<HTMLInputElement>("room");
  private readonly connectButton = byId<HTMLButtonElement>("connect");
  private readonly disconnectButton = byId<HTMLButtonElement>("disconnect");
  private readonly micSelect = byId<HTMLSelectElement>("mic");
  private readonly muteButton = byId<HTMLButtonElement>("mute");
  private readonly micMeter = byId<HTMLMeterElement>("mic-level");
  private readonly agentMeter = byId<HTMLMeterElement>("agent-level");
  private readonly conversation = byId<HTMLOListElement>("conversation");
  private readonly waterfall = byId<HTMLDivElement>("waterfall");
  private readonly errorBox = byId<HTMLDivElement>("error");
  private readonly errorText = byId<HTMLParagraphElement>("error-text");
  private readonly errorAction = byId<HTMLButtonElement>("error-action");
  private recovery: Recovery = "dismiss";
  private userLine: HTMLLIElement | null = null;
  private agentLine: HTMLLIElement | null = null;

  constructor() {
    this.errorAction.addEventListener("click", () => {
      this.clearError();
      this.onRecovery(this.recovery);
    });
  }

  phase(phase: Phase): void {
    this.timeline.phases.push([performance.now(), phase]);
    this.status.textContent = PHASE_TEXT[phase];
    this.status.dataset.phase = phase;
    const busy = phase !== "idle" && phase !== "lost";
    this.connectButton.disabled = busy;
    this.roomInput.disabled = busy;
    this.disconnectButton.disabled = !busy;
    this.micSelect.disabled = !busy;
    this.muteButton.disabled = !busy;
    if (phase === "lost") {
      this.error("The connection to the voice agent was lost.", "reconnect");
    }
    if (!busy) {
      this.micMeter.value = 0;
      this.agentMeter.value = 0;
    }
  }

  roomJoined(room: string): void {
    this.roomInput.value = room;
  }

  userTranscript(text: string, final: boolean): void {
    this.timeline.userTranscripts.push([performance.now(), text, final]);
    if (!this.userLine) {
      this.userLine = this.line("user", "You");
      this.agentLine = null;
    }
    this.setText(this.userLine, text);
    this.userLine.classList.toggle("interim", !final);
    if (final) this.userLine = null;
  }

  agentReplyStarted(): void {
    this.agentLine = null;
    this.userLine = null;
  }

  agentSaid(text: string): void {
    if (!this.agentLine) {
      this.agentLine = this.line("agent", "Agent");
      this.userLine = null;
    }
    const before = this.agentLine.querySelector(".text")?.textContent ?? "";
    this.setText(this.agentLine, before ? `${before} ${text}` : text);
  }

  turnMetrics(metrics: TurnMetrics): void {
    const values = WATERFALL_ROWS.map(([key]) => metrics[key] as number | null);
    if (values.every((value) => value === null)) return;
    const longest = Math.max(1, ...values.map((v) => v ?? 0));
    this.waterfall.replaceChildren();
    this.waterfall.dataset.turn = String(metrics.turn);
    WATERFALL_ROWS.forEach(([key, label], i) => {
      const value = values[i];
      const row = document.createElement("div");
      row.className = "metric";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = label;
      const track = document.createElement("div");
      track.className = "track";
      const bar = document.createElement("div");
      bar.className = value === null ? "bar none" : "bar";
      bar.style.width = `${((value ?? 0) / longest) * 100}%`;
      track.append(bar);
      const shown = document.createElement("span");
      shown.className = "value";
      shown.dataset.metric = key;
      shown.textContent = value === null ? "—" : `${Math.round(value)} ms`;
      row.append(name, track, shown);
      this.waterfall.append(row);
    });
  }

  error(message: string, recovery: Recovery): void {
    this.recovery = recovery;
    this.errorText.textContent = message;
    this.errorAction.textContent = RECOVERY_TEXT[recovery];
    this.errorBox.dataset.recovery = recovery;
    this.errorBox.hidden = false;
  }

  clearError(): void {
    this.errorBox.hidden = true;
  }

  micLevel(level: number): void {
    this.micMeter.value = level;
  }

  agentLevel(level: number): void {
    this.timeline.agentLevels.push([performance.now(), level]);
    if (this.timeline.agentLevels.length > 6000) this.timeline.agentLevels.shift();
    this.agentMeter.value = level;
    const peak = Math.max(Number(this.agentMeter.dataset.peak ?? 0), level);
    this.agentMeter.dataset.peak = peak.toFixed(3);
  }

  mics(devices: MediaDeviceInfo[], selectedId: string | undefined): void {
    if (devices.length) {
      this.micSelect.replaceChildren(
        ...devices.map((device, i) => {
          const option = document.createElement("option");
          option.value = device.deviceId;
          option.textContent = device.label || `Microphone ${i + 1}`;
          return option;
        }),
      );
    }
    if (selectedId) this.micSelect.value = selectedId;
  }

  private line(kind: "user" | "agent", who: string): HTMLLIElement {
    const item = document.createElement("li");
    item.className = kind;
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who;
    const text = document.createElement("span");
    text.className = "text";
    item.append(label, text);
    this.conversation.append(item);
    item.scrollIntoView?.({ block: "nearest" });
    return item;
  }

  private setText(line: HTMLLIElement, text: string): void {
    const span = line.querySelector(".text");
    if (span) span.textContent = text;
  }
}
