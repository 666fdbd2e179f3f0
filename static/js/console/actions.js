// What the agent does: sign in/out, presence, context, summary edits, transfers, leaving and
// ending calls. Each action calls the API, shows the server's message when it refuses, records
// what the server answered in the state (store.dispatch), and has the sync layer reconcile with
// the server afterwards. The forms' own fields and errors are handled here.

import { ApiError } from '../lib/api.js';
import { busy, byId, show } from '../lib/dom.js';
import { E164_PATTERN } from '../lib/protocol.js';
import { transferTarget } from './render.js';
import { showTargetKind } from './screen.js';
import { nameOf, teamName } from './state.js';

const E164 = new RegExp(E164_PATTERN);
const AGENTS_REFRESH_MS = 15000;

function fieldError(id, message) {
  const el = byId(id);
  el.textContent = message ?? '';
  show(el, Boolean(message));
}

export class Actions {
  /**
   * @param {object} deps
   * @param {import('../lib/api.js').Api} deps.api
   * @param {import('./state.js').Store} deps.store
   * @param {import('./sync.js').Sync} deps.sync
   * @param {import('./room.js').RoomLink} deps.room
   * @param {import('./session.js').Session} deps.session
   * @param {import('./notify.js').Notifier} deps.notify
   */
  constructor({ api, store, sync, room, session, notify }) {
    Object.assign(this, { api, store, sync, room, session, notify });
    const on = (id, fn) => byId(id).addEventListener('click', (e) => busy(e.currentTarget, () => this.guard(fn)));

    byId('login-form').addEventListener('submit', (e) => { e.preventDefault(); busy(byId('login-submit'), () => this.login()); });
    byId('logout').addEventListener('click', (e) => busy(e.currentTarget, () => this.guard(() => this.logout())));
    document.getElementById('reset')?.addEventListener('click', (e) => busy(e.currentTarget, () => session.reset()));
    for (const radio of document.querySelectorAll('input[name="presence"]')) {
      radio.addEventListener('change', () => this.guard(() => this.setPresence(radio.value)));
    }

    byId('context-form').addEventListener('submit', (e) => { e.preventDefault(); busy(byId('context-add'), () => this.addContext()); });
    byId('context-text').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); byId('context-form').requestSubmit(); }
    });

    on('summary-edit', () => this.editSummary());
    byId('summary-form').addEventListener('submit', (e) => { e.preventDefault(); busy(byId('summary-save'), () => this.saveSummary()); });
    byId('summary-cancel').addEventListener('click', () => this.closeSummaryEditor());

    for (const radio of document.querySelectorAll('input[name="target-kind"]')) {
      radio.addEventListener('change', () => { byId('transfer-form').dataset.kindChosen = 'yes'; this.renderTargetKind(); });
    }
    // Agent A's own pick of a team outlasts the list being refreshed (and the suggestion).
    byId('transfer-team').addEventListener('change', (e) => { e.currentTarget.dataset.chosen = e.currentTarget.value; });
    on('refresh-agents', () => this.loadAgents());
    byId('transfer-form').addEventListener('submit', (e) => { e.preventDefault(); busy(byId('initiate-transfer'), () => this.guard(() => this.initiateTransfer())); });
    on('complete-transfer', () => this.completeTransfer());
    on('cancel-transfer', () => this.cancelTransfer());

    on('accept-transfer', () => this.acceptTransfer());
    on('decline-transfer', () => this.declineTransfer(this.state.incoming?.transfer_id, byId('decline-reason').value.trim()));
    on('bow-out', () => this.declineTransfer(this.state.view.transfer?.id, 'Declined after the briefing.'));
    on('leave-call', () => this.leaveCall());
    byId('end-call').addEventListener('click', () => { show(byId('end-confirm')); byId('end-confirm-no').focus(); });
    byId('end-confirm-no').addEventListener('click', () => { show(byId('end-confirm'), false); byId('end-call').focus(); });
    on('end-confirm-yes', () => this.endCall());

    // Keep the transfer target list fresh while with a customer. A failed background refresh is
    // not worth an alert (the list is refreshed again, and on demand); an ended session is.
    setInterval(() => {
      if (this.state.view.phase !== 'with-customer') return;
      this.loadAgents().catch((err) => {
        if (err instanceof ApiError && err.status === 401) session.signedOut('Your session has ended. Sign in again.');
        else console.warn('refreshing the agent list failed', err);
      });
    }, AGENTS_REFRESH_MS);
  }

  get state() {
    return this.store.state;
  }

  /** Run an action; an API refusal becomes a visible alert instead of an unhandled rejection. */
  async guard(fn) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        await this.session.signedOut('Your session has ended. Sign in again.');
        return undefined;
      }
      this.notify.alert(err instanceof ApiError ? err.message : `Something went wrong: ${err.message ?? err}`, { sticky: true });
      this.sync.reconcile();
      return undefined;
    }
  }

  resetForCall() {
    this.closeSummaryEditor();
    byId('summary-message').textContent = '';
    fieldError('context-error', null);
    fieldError('transfer-error', null);
    byId('decline-reason').value = '';
    // A new call starts from the default target kind and the new summary's suggested team.
    delete byId('transfer-form').dataset.kindChosen;
    delete byId('transfer-team').dataset.chosen;
  }

  // -- session --------------------------------------------------------------------------------
  async login() {
    const agentId = byId('login-agent').value.trim();
    const password = byId('login-password').value;
    if (!agentId || !password) {
      fieldError('login-error', 'Enter your agent ID and password.');
      return;
    }
    try {
      const res = await this.api.post('/api/login', { agent_id: agentId, password });
      this.store.dispatch({ type: 'csrf', csrf: res.csrf_token });
    } catch (err) {
      fieldError('login-error', err.message);
      byId('login-password').focus();
      return;
    }
    byId('login-password').value = '';
    fieldError('login-error', null);
    // /api/me says where this session's events start and what is already ringing for us.
    await this.session.init();
  }

  logout() {
    return this.session.logout();
  }

  async setPresence(status) {
    const { agent } = await this.api.post('/api/presence', { status });
    this.notify.notice(status === 'available' ? 'You are available for calls and transfers.' : 'You are away: no new calls or transfers will be routed to you.');
    this.store.dispatch({ type: 'presence', agent });
  }

  loadAgents() {
    return this.sync.loadAgents();
  }

  // -- context and summary --------------------------------------------------------------------
  async addContext() {
    const textarea = byId('context-text');
    const text = textarea.value.trim();
    if (!text) {
      fieldError('context-error', 'Type a note first.');
      textarea.focus();
      return;
    }
    try {
      const { entry } = await this.api.post('/api/add-context', { session_id: this.state.call.session_id, text });
      this.store.dispatch({ type: 'contextAdded', entry });
      textarea.value = '';
      fieldError('context-error', null);
    } catch (err) {
      fieldError('context-error', `Not saved: ${err.message}`);
    }
  }

  summaryUnavailable(err) {
    return err instanceof ApiError && (err.status === 404 || err.status === 405);
  }

  async editSummary() {
    const message = byId('summary-message');
    const sessionId = this.state.call.session_id;
    try {
      const body = await this.api.get(`/api/calls/${encodeURIComponent(sessionId)}/summary`);
      const summary = body.summary ?? null;
      byId('summary-text').value = summary?.text ?? '';
      message.textContent = summary ? '' : 'There is no summary yet; what you write here becomes the summary.';
      show(byId('summary-form'));
      show(byId('summary-edit'), false);
      byId('summary-text').focus();
    } catch (err) {
      message.textContent = this.summaryUnavailable(err)
        ? `Editing the summary is not available on this server (it answered ${err.status}: ${err.message}). The summary shown is what the next agent will see.`
        : `The summary could not be loaded for editing: ${err.message}`;
    }
  }

  async saveSummary() {
    const message = byId('summary-message');
    const text = byId('summary-text').value.trim();
    if (!text) {
      message.textContent = 'The summary cannot be empty.';
      return;
    }
    try {
      await this.api.put(`/api/calls/${encodeURIComponent(this.state.call.session_id)}/summary`, { text });
      this.closeSummaryEditor();
      message.textContent = 'Summary saved. This is what the next agent will see.';
      this.sync.reconcile();
    } catch (err) {
      message.textContent = this.summaryUnavailable(err)
        ? `Saving the summary is not available on this server (it answered ${err.status}: ${err.message}). Your text was not saved.`
        : `Not saved: ${err.message}`;
    }
  }

  closeSummaryEditor() {
    show(byId('summary-form'), false);
    show(byId('summary-edit'));
  }

  // -- transfers (Agent A) --------------------------------------------------------------------
  renderTargetKind() {
    showTargetKind(this.state.teams);
    fieldError('transfer-error', null);
  }

  async initiateTransfer() {
    const kind = document.querySelector('input[name="target-kind"]:checked')?.value ?? 'agent';
    const body = { session_id: this.state.call.session_id };
    if (kind === 'team') {
      body.to_team = byId('transfer-team').value;
      if (!body.to_team) {
        fieldError('transfer-error', 'Choose a team with someone available (or refresh the list).');
        byId('transfer-team').focus();
        return;
      }
    } else if (kind === 'agent') {
      body.to_agent_id = byId('transfer-agent').value;
      if (!body.to_agent_id) {
        fieldError('transfer-error', 'Choose an available agent (or refresh the list).');
        byId('transfer-agent').focus();
        return;
      }
    } else {
      body.to_phone = byId('transfer-phone').value.replace(/[\s()-]/g, '');
      if (!E164.test(body.to_phone)) {
        fieldError('transfer-error', 'Enter the number in international form, e.g. +14155550100.');
        byId('transfer-phone').focus();
        return;
      }
    }
    fieldError('transfer-error', null);
    let res;
    try {
      res = await this.api.post('/api/initiate-transfer', body);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) throw err;
      fieldError('transfer-error', `The transfer did not start: ${err.message}`);
      if (err.code === 'agent_unavailable' || err.code === 'team_unavailable') await this.loadAgents();
      return;
    }
    const { transfer } = res;
    this.room.offerGrant(res);
    this.notify.notice(`Transfer started to ${transferTarget(transfer, (id) => nameOf(this.state, id), (id) => teamName(this.state, id))}.`);
    this.store.dispatch({ type: 'transferStarted', transfer });
    await this.sync.reconcile();
  }

  async completeTransfer() {
    const t = this.state.view.transfer;
    if (!t) return;
    await this.api.post('/api/complete-transfer', { transfer_id: t.id });
    await this.sync.reconcile();
  }

  async cancelTransfer() {
    const t = this.state.view.transfer;
    if (!t) return;
    await this.api.post('/api/cancel-transfer', { transfer_id: t.id });
    this.notify.notice('Transfer cancelled. Back with the customer.');
    await this.sync.reconcile();
  }

  // -- transfers (Agent B) --------------------------------------------------------------------
  async acceptTransfer() {
    const inc = this.state.incoming;
    if (!inc) return;
    let res;
    try {
      res = await this.api.post('/api/accept-transfer', { transfer_id: inc.transfer_id });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) throw err;
      this.store.dispatch({ type: 'incomingDone', render: true });
      this.notify.alert(`This transfer can no longer be accepted: ${err.message}`, { sticky: true });
      await this.sync.reconcile();
      return;
    }
    this.room.offerGrant(res);
    this.store.dispatch({ type: 'incomingDone' });
    this.notify.notice(`Accepted the transfer of ${inc.customer_name}. Briefing with ${inc.from_agent_name}.`);
    await this.sync.reconcile();
  }

  async declineTransfer(transferId, reason) {
    if (!transferId) return;
    await this.api.post('/api/decline-transfer', reason ? { transfer_id: transferId, reason } : { transfer_id: transferId });
    byId('decline-reason').value = '';
    this.notify.notice('You declined the transfer.');
    this.store.dispatch({ type: 'incomingDone', transferId, render: true });
    await this.sync.reconcile();
  }

  // -- leaving --------------------------------------------------------------------------------
  async leaveCall() {
    await this.api.post('/api/agent-exit-room', { session_id: this.state.call.session_id });
    this.notify.notice('You left the call.');
    await this.sync.reconcile();
  }

  async endCall() {
    show(byId('end-confirm'), false);
    await this.api.post('/api/end-call', { session_id: this.state.call.session_id });
    await this.sync.reconcile();
  }
}
