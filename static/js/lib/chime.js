// A short two-note chime for incoming calls and transfers, synthesised with Web Audio (no audio
// file to fetch). Browsers only let a page make sound after a click; before that the chime is
// silent and the visual alert carries the message.

let context = null;

export function chime() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  context = context ?? new Ctx();
  if (context.state === 'suspended') {
    context.resume().catch((err) => console.info('chime muted until the page is clicked', err));
    if (context.state === 'suspended') return;
  }
  const now = context.currentTime;
  [[880, 0], [1320, 0.18]].forEach(([freq, at]) => {
    const osc = context.createOscillator();
    const gain = context.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, now + at);
    gain.gain.exponentialRampToValueAtTime(0.2, now + at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + at + 0.16);
    osc.connect(gain).connect(context.destination);
    osc.start(now + at);
    osc.stop(now + at + 0.18);
  });
}
