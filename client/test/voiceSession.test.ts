import { afterEach, describe, expect, it, vi } from "vitest";

import { LiveKitTransport, RTVI_LABEL } from "../src/livekitTransport";
import { type SessionView, VoiceSession } from "../src/voiceSession";
import { FakeRoom, fakeDeps } from "./fakeLiveKit";

const GREETING = "Hello! How can I help you today?";
const SESSION = {
  url: "ws://127.0.0.1:7880",
  room: "den",
  token: "jwt-token",
  identity: "user-1",
  session_id: "s-1",
};

/** Records what the session tells the page about the conversation, in order. */
function recordingView(): { view: SessionView; conversation: string[] } {
  const conversation: string[] = [];
  const view: SessionView = {
    phase: () => undefined,
    roomJoined: () => undefined,
    userTranscript: (text, final) => {
      if (final) conversation.push(`user: ${text}`);
    },
    agentReplyStarted: () => conversation.push("agent reply starts"),
    agentSaid: (text) => conversation.push(`agent: ${text}`),
    turnMetrics: () => undefined,
    error: (message) => conversation.push(`error: ${message}`),
    micLevel: () => undefined,
    agentLevel: () => undefined,
    mics: () => undefined,
  };
  return { view, conversation };
}

/** The RTVI messages Pipecat 1.14's observer sends while the bot speaks one piece. */
function spoken(text: string, segment: number): object[] {
  const progress = (said: string, left: string) => ({
    accumulated_text: said,
    remaining_text: left,
  });
  return [
    { type: "bot-tts-started" },
    { type: "bot-started-speaking" },
    {
      type: "bot-output",
      data: {
        text,
        output_type: "sentence",
        segment_id: segment,
        will_be_spoken: true,
        spoken_status: "new",
        spoken_progress: progress("", text),
      },
    },
    {
      type: "bot-output",
      data: {
        text,
        output_type: "sentence",
        segment_id: segment,
        will_be_spoken: true,
        spoken_status: "completed",
        spoken_progress: progress(text, ""),
      },
    },
    { type: "bot-tts-text", data: { text } },
    { type: "bot-tts-stopped" },
    { type: "bot-stopped-speaking" },
  ];
}

async function connectedSession() {
  // The SDK reads the user agent for its about-client message.
  vi.stubGlobal("window", { navigator: { userAgent: "vitest" } });
  const room = new FakeRoom();
  const { deps } = fakeDeps(room);
  const { view, conversation } = recordingView();
  const fetchImpl = (async () =>
    new Response(JSON.stringify(SESSION), {
      headers: { "Content-Type": "application/json" },
    })) as typeof fetch;
  const session = new VoiceSession(view, () => new LiveKitTransport(deps), fetchImpl);
  const connecting = session.connect("den");
  await vi.waitFor(() => expect(room.state).toBe("connected"));
  room.botArrives();
  await vi.waitFor(() => expect(room.sent.length).toBe(1));
  const ready = room.sent[0].payload as { id: string };
  room.receive({ id: ready.id, label: RTVI_LABEL, type: "bot-ready", data: { version: "2.2.0" } });
  await connecting;
  const fromBot = (messages: object[]) => {
    messages.forEach((m, i) => room.receive({ id: `b-${i}`, label: RTVI_LABEL, ...m }));
  };
  return { session, conversation, fromBot };
}

afterEach(() => vi.unstubAllGlobals());

describe("the conversation on the page", () => {
  it("shows the greeting, which the bot speaks without its LLM", async () => {
    const { session, conversation, fromBot } = await connectedSession();
    fromBot(spoken(GREETING, 1));
    expect(conversation).toEqual([`agent: ${GREETING}`]);
    await session.disconnect();
  });

  it("shows a reply once per piece spoken, not the LLM's tokens as well", async () => {
    const { session, conversation, fromBot } = await connectedSession();
    fromBot(spoken(GREETING, 1));
    fromBot([
      {
        type: "user-transcription",
        data: { text: "what is the weather", final: true, timestamp: "t", user_id: "u" },
      },
      { type: "bot-llm-started" },
      ...["Sunny", " and", " mild.", " Take", " a hat."].map((text) => ({
        type: "bot-llm-text",
        data: { text },
      })),
      { type: "bot-llm-stopped" },
      ...spoken("Sunny and mild.", 7),
      ...spoken("Take a hat.", 8),
    ]);
    expect(conversation).toEqual([
      `agent: ${GREETING}`,
      "user: what is the weather",
      "agent reply starts",
      "agent: Sunny and mild.",
      "agent: Take a hat.",
    ]);
    await session.disconnect();
  });
});
