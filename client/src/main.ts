/** Wires the page to a voice session. */
import { PageView } from "./pageView";
import { freshRoomName, ROOM_PATTERN } from "./sessionApi";
import { VoiceSession } from "./voiceSession";

const view = new PageView();
const session = new VoiceSession(view);
const form = document.getElementById("connect-form") as HTMLFormElement;
const roomInput = document.getElementById("room") as HTMLInputElement;
const mute = document.getElementById("mute") as HTMLButtonElement;
const mic = document.getElementById("mic") as HTMLSelectElement;

// Each tab is its own conversation.
roomInput.value = freshRoomName();
view.phase("idle");

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const room = roomInput.value.trim();
  if (!ROOM_PATTERN.test(room)) {
    view.error("Room names are 1 to 64 letters, digits, - or _.", "dismiss");
    roomInput.focus();
    return;
  }
  view.clearError();
  void session.connect(room);
});

document.getElementById("disconnect")?.addEventListener("click", () => {
  view.clearError();
  void session.disconnect();
});

mute.addEventListener("click", () => {
  const muted = mute.getAttribute("aria-pressed") !== "true";
  mute.setAttribute("aria-pressed", String(muted));
  mute.textContent = muted ? "Unmute" : "Mute";
  session.setMicEnabled(!muted);
});

mic.addEventListener("change", () => session.selectMic(mic.value));

view.onRecovery = (recovery) => {
  if (recovery === "reconnect") void session.reconnect();
  if (recovery === "retry") form.requestSubmit();
};

Object.assign(window, { voiceAgentTimeline: view.timeline });
