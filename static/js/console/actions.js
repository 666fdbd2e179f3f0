// What the agent does: sign in/out, presence, context, summary edits, transfers, leaving and
// ending calls. Each action calls the API, shows the server's message when it refuses, and
// lets the console reconcile with the server afterwards.

import { ApiError } from '../lib/api.js';
import { busy, byId, show } from '../lib/dom.js';
import { derivePhaseFor } from './phase.js';
import { renderAgentOptions } from './render.js';

const E164 = /^\+[1-9]\d{6,14}$/;
const AGENTS_REFRESH_MS = 15000;

function fieldError(id, message) {
  const el = byId(id);
  el.textContent = message ?? '';
  show(el, Boolean(message));
}

export class Actions {
  /** @param {object} c  the console controller */
  constructor(c) {
    this.c = c;
    const on = (id, fn) => byId(id).addEventListener('click', (e) => busy(e.currentTarget, () => this.guard(fn)));

    byId('login-form').addEventListener('submit', (e) => { e.preventDefault(); busy(byId('login-submit'), () => this.login()); });
    byId('logout').addEventListener('click', (e) => busy(e.currentTarget, () => this.guard(() => this.logout())));
    document.getElementById('reset')?.addEventListener('click', (e) => busy(e.currentTarget, () => c.reset()));
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
      radio.addEventListener('change', () => this.renderTargetKind());
    }
    on('refresh-agents', () => this.loadAgents());
    byId('transfer-form').addEventListener('submit', (e) => { e.preventDefault(); busy(byId('initiate-transfer'), () => this.guard(() => this.initiateTransfer())); });
    on('complete-transfer', () => this.completeTransfer());
    on('cancel-transfer', () => this.cancelTransfer());

    on('accept-transfer', () => this.acceptTransfer());
    on('decline-transfer', () => this.declineTransfer(this.c.incoming?.transfer_id, byId('decline-reason').value.trim()));
    on('bow-out', () => this.declineTransfer(this.c.view.transfer?.id, 'Declined after the briefing.'));
    on('leave-call', () => this.leaveCall());
    byId('end-call').addEventListener('click', () => { show(byId('end-confirm')); byId('end-confirm-no').focus(); });
    byId('end-confirm-no').addEventListener('click', () => { show(byId('end-confirm'), false); byId('end-call').focus(); });
    on('end-confirm-yes', () => this.endCall());

    // Keep the transfer target list fresh while with a customer. A failed background refresh is
    // not worth an alert (the list is refreshed again, and on demand); an ended session is.
    setInterval(() => {
      if (this.c.view.phase !== 'with-customer') return;
      this.loadAgents().catch((err) => {
        if (err instanceof ApiError && err.status === 401) this.c.signedOut('Your session has ended. Sign in again.');
        else console.warn('refreshing the agent list failed', err);
      });
    }, AGENTS_REFRESH_MS);
  }

  /** Run an action; an API refusal becomes a visible alert instead of an unhandled rejection. */
  async guard(fn) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        await this.c.signedOut('Your session has ended. Sign in again.');
        return undefined;
      }
      this.c.alert(err instanceof ApiError ? err.message : `Something went wrong: ${err.message ?? err}`, { sticky: true });
      this.c.reconcile();
      return undefined;
    }
  }

  resetForCall() {
    this.closeSummaryEditor();
    byId('summary-message').textContent = '';
    fieldError('context-error', null);
    fieldError('transfer-error', null);
    byId('decline-reason').value = '';
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
      const res = await this.c.api.post('/api/login', { agent_id: agentId, password });
      this.c.csrf = res.csrf_token;
    } catch (err) {
      fieldError('login-error', err.message);
      byId('login-password').focus();
      return;
    }
    byId('login-password').value = '';
    fieldError('login-error', null);
    // /api/me says where this session's events start and what is already ringing for us.
    await this.c.init();
  }

  async logout() {
    // Signing out ends this session's event stream too (session_ended): that is expected here.
    this.c.signingOut = true;
    try {
      await this.c.api.post('/api/logout');
      await this.c.signedOut('You are signed out.');
    } finally {
      this.c.signingOut = false;
    }
  }

  async setPresence(status) {
    const { agent } = await this.c.api.post('/api/presence', { status });
    this.c.me = { ...this.c.me, ...agent };
    this.c.notice(status === 'available' ? 'You are available for calls and transfers.' : 'You are away: no new calls or transfers will be routed to you.');
    this.c.render();
  }

  async loadAgents() {
    const { agents } = await this.c.api.get('/api/agents');
    this.c.agents = agents;
    renderAgentOptions(byId('transfer-agent'), agents, this.c.me?.id);
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
      const { entry } = await this.c.api.post('/api/add-context', { session_id: this.c.call.session_id, text });
      this.c.entries.set(entry.id, entry);
      this.c.renderContext();
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
    const sessionId = this.c.call.session_id;
    try {
      const body = await this.c.api.get(`/api/calls/${encodeURIComponent(sessionId)}/summary`);
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
      await this.c.api.put(`/api/calls/${encodeURIComponent(this.c.call.session_id)}/summary`, { text });
      this.closeSummaryEditor();
      message.textContent = 'Summary saved. This is what the next agent will see.';
      this.c.reconcile();
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
    const kind = document.querySelector('input[name="target-kind"]:checked')?.value ?? 'agent';
    show(byId('target-agent-box'), kind === 'agent');
    show(byId('target-phone-box'), kind === 'phone');
    fieldError('transfer-error', null);
  }

  async initiateTransfer() {
    const kind = document.querySelector('input[name="target-kind"]:checked')?.value ?? 'agent';
    const body = { session_id: this.c.call.session_id };
    if (kind === 'agent') {
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
      res = await this.c.api.post('/api/initiate-transfer', body);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) throw err;
      fieldError('transfer-error', `The transfer did not start: ${err.message}`);
      if (err.code === 'agent_unavailable') await this.loadAgents();
      return;
    }
    const c = this.c;
    c.pendingGrant = { room_name: res.transfer.transfer_room, token: res.token, livekit_url: res.livekit_url };
    c.call.transfers.push(res.transfer);
    c.view = derivePhaseFor(c);
    c.notice(`Transfer started to ${res.transfer.to_agent_id ? c.nameOf(res.transfer.to_agent_id) : res.transfer.to_phone}.`);
    c.render();
    await c.reconcile();
  }

  async completeTransfer() {
    const t = this.c.view.transfer;
    if (!t) return;
    await this.c.api.post('/api/complete-transfer', { transfer_id: t.id });
    await this.c.reconcile();
  }

  async cancelTransfer() {
    const t = this.c.view.transfer;
    if (!t) return;
    await this.c.api.post('/api/cancel-transfer', { transfer_id: t.id });
    this.c.notice('Transfer cancelled. Back with the customer.');
    await this.c.reconcile();
  }

  // -- transfers (Agent B) --------------------------------------------------------------------
  async acceptTransfer() {
    const inc = this.c.incoming;
    if (!inc) return;
    let res;
    try {
      res = await this.c.api.post('/api/accept-transfer', { transfer_id: inc.transfer_id });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) throw err;
      this.c.incoming = null;
      this.c.alert(`This transfer can no longer be accepted: ${err.message}`, { sticky: true });
      this.c.render();
      await this.c.reconcile();
      return;
    }
    this.c.pendingGrant = { room_name: res.transfer.transfer_room, token: res.token, livekit_url: res.livekit_url };
    this.c.incoming = null;
    this.c.notice(`Accepted the transfer of ${inc.customer_name}. Briefing with ${inc.from_agent_name}.`);
    await this.c.reconcile();
  }

  async declineTransfer(transferId, reason) {
    if (!transferId) return;
    await this.c.api.post('/api/decline-transfer', reason ? { transfer_id: transferId, reason } : { transfer_id: transferId });
    if (this.c.incoming?.transfer_id === transferId) this.c.incoming = null;
    byId('decline-reason').value = '';
    this.c.notice('You declined the transfer.');
    this.c.render();
    await this.c.reconcile();
  }

  // -- leaving --------------------------------------------------------------------------------
  async leaveCall() {
    await this.c.api.post('/api/agent-exit-room', { session_id: this.c.call.session_id });
    this.c.notice('You left the call.');
    await this.c.reconcile();
  }

  async endCall() {
    show(byId('end-confirm'), false);
    await this.c.api.post('/api/end-call', { session_id: this.c.call.session_id });
    await this.c.reconcile();
  }
}
