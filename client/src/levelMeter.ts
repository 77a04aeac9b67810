/** The loudness of a live audio track, sampled ten times a second with Web Audio. */
export class LevelMeter {
  private constructor(
    private readonly context: AudioContext,
    private readonly timer: ReturnType<typeof setInterval>,
  ) {}

  /** Start metering; null where Web Audio is unavailable (the page still works). */
  static start(track: MediaStreamTrack, onLevel: (level: number) => void): LevelMeter | null {
    if (typeof AudioContext === "undefined") return null;
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      onLevel(Math.min(1, Math.sqrt(sum / samples.length) * 4));
    }, 100);
    return new LevelMeter(context, timer);
  }

  stop(): void {
    clearInterval(this.timer);
    void this.context.close();
  }
}
