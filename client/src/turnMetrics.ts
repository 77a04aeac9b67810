/** The `turn-metrics` server message the bot sends after every turn. */
export interface TurnMetrics {
  room: string;
  turn: number;
  endpointer_latency_ms: number | null;
  llm_ttft_ms: number | null;
  tts_first_audio_latency_ms: number | null;
  e2e_first_audio_ms: number | null;
  voice_to_voice_ms: number | null;
  barge_in_cutoff_ms: number | null;
}

export const TURN_METRICS_TYPE = "turn-metrics";

/** The waterfall's rows, in the order the turn happens. */
export const WATERFALL_ROWS: ReadonlyArray<[keyof TurnMetrics, string]> = [
  ["endpointer_latency_ms", "Endpointing"],
  ["llm_ttft_ms", "LLM first token"],
  ["tts_first_audio_latency_ms", "TTS first audio"],
  ["e2e_first_audio_ms", "End to end"],
  ["voice_to_voice_ms", "Voice to voice"],
  ["barge_in_cutoff_ms", "Barge-in cutoff"],
];

export function isTurnMetrics(data: unknown): data is TurnMetrics {
  return (
    typeof data === "object" &&
    data !== null &&
    (data as { type?: unknown }).type === TURN_METRICS_TYPE &&
    typeof (data as { turn?: unknown }).turn === "number"
  );
}
