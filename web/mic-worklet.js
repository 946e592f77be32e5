// The microphone's downsampler (48 kHz -> 16 kHz frames), loaded as an AudioWorklet module.
class Down extends AudioWorkletProcessor {
  constructor() { super(); this.ratio = sampleRate / 16000; this.acc = []; this.pos = 0; }
  process(inputs) {
    const x = inputs[0][0]; if (!x) return true;
    for (let i = 0; i < x.length; i++) { this.pos += 1; if (this.pos >= this.ratio) { this.pos -= this.ratio; this.acc.push(x[i]); } }
    if (this.acc.length >= 320) {
      const out = new Int16Array(this.acc.length);
      for (let i = 0; i < this.acc.length; i++) out[i] = Math.max(-1, Math.min(1, this.acc[i])) * 32767;
      this.port.postMessage(out.buffer, [out.buffer]); this.acc = [];
    }
    return true;
  }
}
registerProcessor("down16k", Down);
