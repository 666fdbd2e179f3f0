// Rendering helpers for the agent console. All text is set with textContent (through h/fill).

import { fill, h, timeOfDay } from '../lib/dom.js';
import { TRANSFER_STATUS_LABEL } from '../lib/protocol.js';

const SOURCE_LABEL = { note: 'Note', transcript: 'Transcript', system: 'System' };

/** The context history: oldest first, each with its time, author and source. */
export function renderEntries(listEl, entries, nameOf) {
  const items = [...entries].sort((a, b) => a.id - b.id).map((e) => {
    const who = e.author === 'system' ? 'System' : e.author === 'customer' ? 'Customer' : nameOf(e.author);
    return h('li', { class: `entry entry-${e.source}`, dataset: { entryId: e.id, source: e.source } },
      h('p', { class: 'entry-meta' },
        h('time', { datetime: e.created_at ?? '' }, timeOfDay(e.created_at)),
        ' · ', who, e.source === 'system' ? '' : ` · ${SOURCE_LABEL[e.source] ?? e.source}`),
      h('p', { class: 'entry-text' }, e.text));
  });
  if (!items.length) items.push(h('li', { class: 'muted' }, 'Nothing recorded yet.'));
  fill(listEl, items);
}

/** A summary card: the rendered text plus provider, urgency and sentiment badges. */
export function renderSummary(el, summary, emptyText = 'No summary yet. One is prepared when you start a transfer.') {
  if (!summary) {
    fill(el, h('p', { class: 'muted' }, emptyText));
    el.dataset.summaryId = '';
    return;
  }
  const s = summary.structured ?? {};
  const badges = [];
  if (s.urgency) badges.push(h('span', { class: `badge badge-urgency-${s.urgency}` }, `Urgency: ${s.urgency}`));
  if (s.sentiment && s.sentiment !== 'unknown') badges.push(h('span', { class: 'badge' }, `Sentiment: ${s.sentiment}`));
  let source;
  if (summary.edited_by) source = `Edited by ${summary.edited_by}`;
  else if (summary.degraded) source = `Offline summary: the AI summary was unavailable${summary.degraded_reason ? ` (${summary.degraded_reason})` : ''}.`;
  else source = `Prepared by ${summary.provider}${summary.model ? ` (${summary.model})` : ''}`;
  fill(el,
    badges.length ? h('p', { class: 'badges' }, badges) : null,
    h('p', { class: 'summary-text' }, summary.text),
    h('p', { class: summary.degraded && !summary.edited_by ? 'summary-source degraded' : 'summary-source muted' }, source));
  el.dataset.summaryId = String(summary.id ?? '');
}

/** [status, text] for the transfer panel's live status line. */
export function transferStatus(t, nameOf, teamName = (id) => id) {
  if (!t) return ['none', ''];
  const target = transferTarget(t, nameOf, teamName);
  const label = TRANSFER_STATUS_LABEL[t.status] ?? t.status;
  switch (t.status) {
    case 'pending':
    case 'ringing':
      return [t.status, `${label}: waiting for ${target} to answer. The customer is on hold.`];
    case 'briefing':
      return [t.status, `${label}: you and ${target} are in the private transfer room. The customer is on hold and cannot hear you.`];
    case 'completed':
      return [t.status, `${label}: ${target} has the customer.`];
    default: {
      const code = t.error_code ? ` (code ${t.error_code})` : '';
      const reason = t.reason ? ` ${t.reason}` : '';
      return [t.status, `${label}: transfer to ${target} did not happen.${reason}${code}`];
    }
  }
}

/** Options of the transfer target list: available agents first, the rest shown but disabled. */
export function renderAgentOptions(selectEl, agents, meId) {
  const previous = selectEl.value;
  const others = agents.filter((a) => a.id !== meId);
  const free = others.filter((a) => a.presence === 'available' && !a.busy);
  const options = [h('option', { value: '' }, free.length ? 'Choose an agent…' : 'No agent is available right now')];
  for (const a of others) {
    const ok = a.presence === 'available' && !a.busy;
    const state = ok ? 'available' : a.busy ? 'on a call' : a.presence;
    options.push(h('option', { value: a.id, disabled: !ok }, `${a.name} (${a.id}) · ${state}`));
  }
  fill(selectEl, options);
  if (free.some((a) => a.id === previous)) selectEl.value = previous;
}

/** Who a transfer went to: its Agent B, a team nobody has taken yet, or a phone number. */
export function transferTarget(t, nameOf, teamName = (id) => id) {
  if (t.to_agent_id) return nameOf(t.to_agent_id);
  return t.to_team ? `team ${teamName(t.to_team)}` : t.to_phone;
}

/** Options of the team list: each with how many members are free now (none: disabled). The
 * summary's suggestion is chosen unless Agent A has picked another team already. */
export function renderTeamOptions(selectEl, teams, suggested) {
  const previous = selectEl.dataset.chosen ?? '';
  const options = [h('option', { value: '' }, teams.some((t) => t.available) ? 'Choose a team…' : 'No team has anyone available right now')];
  for (const t of teams) {
    const free = `${t.available} available`;
    const hint = t.id === suggested ? ' · suggested' : '';
    options.push(h('option', { value: t.id, disabled: !t.available }, `${t.name} · ${free}${hint}`));
  }
  fill(selectEl, options);
  const pick = [previous, suggested].find((id) => id && teams.some((t) => t.id === id && t.available));
  selectEl.value = pick ?? '';
}

/** One line in "Recent activity". */
export function noticeItem(text, level) {
  return h('li', { class: `notice notice-${level}` },
    h('p', { class: 'entry-meta' }, h('time', { datetime: new Date().toISOString() }, timeOfDay())),
    h('p', { class: 'entry-text' }, text));
}
