// Monitor, whisper, barge: the supervisor's own audio in a live call (POST /api/supervise).
//   monitor  the token is hidden and subscribe-only: we only listen, nobody knows;
//   whisper  only the call's agent may subscribe to our microphone (set before it is published);
//   barge    a normal participant: everyone hears us, and the call is told.
// One supervision at a time: a new one replaces the last (the server ends it too), and leaving
// the page ends it (the room disconnects, and LiveKit's webhook ends the supervision).

import { byId, show } from '../lib/dom.js';

const HEADING = { monitor: 'Listening in', whisper: 'Whispering', barge: 'In the call' };
const DESCRIBE = {
  monitor: (c) => `Listening to ${c.customer_name} and ${c.agent_name ?? 'the agent'}. Nobody hears you or sees you in the call.`,
  whisper: (c) => `Whispering to ${c.agent_name ?? 'the agent'}. Only they hear you; ${c.customer_name} does not.`,
  barge: (c) => `In the call with ${c.customer_name} and ${c.agent_name ?? 'the agent'}. Everyone hears you.`,
};

export class Coach {
  /**
   * @param {object} deps
   * @param {import('../lib/api.js').Api} deps.api
   * @param {import('../lib/audio.js').CallAudio} deps.audio
   * @param {(message: string) => void} deps.error
   */
  constructor({ api, audio, error }) {
    Object.assign(this, { api, audio, error });
    this.current = null; // {call, mode, sessionId}
    this.onChange = () => {}; // the floor marks the button of the supervision under way
    audio.addEventListener('change', () => this._renderAudio());
    byId('supervise-end').addEventListener('click', () => this.stop());
    byId('supervise-audio').addEventListener('click', () => {
      this.audio.startAudio().catch((err) => this.error(`The browser did not start the audio: ${err.message ?? err}`));
    });
  }

  async start(call, mode) {
    let grant;
    try {
      grant = await this.api.post('/api/supervise', { session_id: call.session_id, mode });
    } catch (err) {
      this.error(err.message);
      return;
    }
    await this.audio.leave();
    this.current = { call, mode, sessionId: call.session_id };
    this._render();
    byId('supervise-end').focus(); // the card is at the top of the page, far from the button pressed
    const joined = await this.audio.join(grant.livekit_url, grant.token, grant.room_name, {
      microphone: mode === 'monitor' ? 'none' : 'publish',
      heardBy: mode === 'whisper' ? grant.whisper_to : null,
    });
    if (!joined && this.audio.problem) this.error(this.audio.problem.message);
  }

  async stop() {
    const current = this.current;
    if (!current) return;
    this.current = null;
    await this.audio.leave();
    this._render();
    try {
      await this.api.post('/api/supervise/end', { session_id: current.sessionId });
    } catch (err) {
      // Leaving the room already ended it (LiveKit's webhook), or the call ended first.
      if (err.code !== 'not_supervising' && err.status !== 404) this.error(err.message);
    }
  }

  /** The floor changed: a call we supervise that is no longer live ends our part in it. */
  floorChanged(view) {
    if (this.current && !view.calls.some((c) => c.session_id === this.current.sessionId)) {
      this.current = null;
      this.audio.leave();
      this._render();
    }
  }

  _render() {
    const current = this.current;
    this.onChange();
    show(byId('supervising'), Boolean(current));
    if (!current) return;
    byId('supervising').dataset.mode = current.mode;
    byId('supervising-heading').textContent = HEADING[current.mode];
    byId('supervising-text').textContent = DESCRIBE[current.mode](current.call);
    this._renderAudio();
  }

  _renderAudio() {
    if (!this.current) return;
    const audio = this.audio;
    const text = {
      connecting: 'Connecting the audio…',
      connected: 'Audio connected.',
      reconnecting: 'Audio reconnecting…',
      failed: audio.problem?.message ?? 'The audio could not connect.',
    }[audio.state] ?? '';
    byId('supervising-audio').textContent = audio.micProblem ? `${text} ${audio.micProblem.message}` : text;
    show(byId('supervise-audio'), audio.connected && !audio.canPlay);
  }
}
