// The drop console: plain browser JavaScript, no build step. Queries and mutations go to
// POST /graphql; the live counters come over the graphql-ws subscription on the same path.
const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = 'firstcome.token';
const state = { token: null, live: null, unsubscribe: null, campaign: null, samples: [], soldOutAt: null, cursors: {}, jobs: new Map() };

async function gql(query, variables) {
  const r = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${state.token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await r.json();
  if (body.errors?.length) throw new Error(body.errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join('; '));
  return body.data;
}

const text = (el, v) => (el.textContent = v === null || v === undefined ? '' : String(v));
const row = (cells) => {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    if (c instanceof Node) td.append(c);
    else text(td, c);
    tr.append(td);
  }
  return tr;
};
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');

// ── sign in ───────────────────────────────────────────────────────────────
async function signIn(token) {
  state.token = token.trim();
  try {
    await loadCampaigns();
  } catch (err) {
    text($('#sign-in-error'), err.message);
    state.token = null;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, state.token);
  const claims = JSON.parse(atob(state.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  text($('#who'), `signed in as ${claims.sub}`);
  $('#sign-in').hidden = true;
  $('#app').hidden = false;
  $('#sign-out').hidden = false;
  watchHealth();
  state.live = graphqlWs.createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
    connectionParams: { authorization: `Bearer ${state.token}` },
    lazy: true,
    retryAttempts: 5,
  });
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = '';
  location.reload();
}

// ── campaigns ─────────────────────────────────────────────────────────────
async function loadCampaigns() {
  const d = await gql(`{ campaigns(first: 50) { edges { node { id title status stock entrants winners remaining } } } }`);
  const body = $('#campaigns tbody');
  body.replaceChildren(
    ...d.campaigns.edges.map(({ node: c }) => {
      const tr = row([c.id, c.title, c.status, c.stock, c.entrants, c.winners, c.remaining]);
      tr.dataset.id = c.id;
      tr.addEventListener('click', () => select(c.id));
      return tr;
    }),
  );
}

async function create(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  text($('#create-error'), '');
  try {
    const input = {
      title: f.get('title'),
      reward: f.get('reward'),
      stock: Number(f.get('stock')),
      closesAt: new Date(Date.now() + Number(f.get('closesIn')) * 60_000).toISOString(),
      ...(f.get('id') ? { id: f.get('id') } : {}),
    };
    const d = await gql(`mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }`, { i: input });
    await loadCampaigns().catch(() => undefined);
    select(d.createCampaign.id);
  } catch (err) {
    text($('#create-error'), err.message);
  }
}

// ── a live drop ───────────────────────────────────────────────────────────
function select(id) {
  state.unsubscribe?.();
  state.campaign = id;
  state.samples = [];
  state.soldOutAt = null;
  state.cursors = {};
  $('#drop').hidden = false;
  text($('#drop-id'), id);
  text($('#sold-out-at'), '');
  $('#jobs tbody').replaceChildren();
  text($('#report-out'), '');
  state.unsubscribe = state.live.subscribe(
    { query: `subscription($id: ID!) { campaign(id: $id) { id status stock entrants winners remaining } }`, variables: { id } },
    {
      next: ({ data, errors }) => (errors ? text($('#drop-status'), errors[0].message) : data.campaign && show(data.campaign)),
      error: (err) => text($('#drop-status'), `live: ${err.reason ?? err.message ?? err}`),
      complete: () => undefined,
    },
  );
  page('winners', true);
  page('gifticons', true);
  $('#codes').hidden = true;
  codes();
}

// An INVENTORY campaign's codes: counts only, never a code (`codes` is null for other campaigns).
// Polled, not pushed: codes are loaded and issued while the counters stand still.
async function codes() {
  const id = state.campaign;
  try {
    const d = await gql(`query($id: ID!) { campaign(id: $id) { codes { loaded issued short } } }`, { id });
    if (id !== state.campaign) return;
    const c = d.campaign?.codes;
    $('#codes').hidden = !c;
    if (c) {
      text($('#codes-loaded'), c.loaded);
      text($('#codes-issued'), c.issued);
      text($('#codes-short'), c.short);
      $('#codes-short').parentElement.classList.toggle('short', c.short > 0);
    }
  } catch {
    // a missed poll is made good by the next one
  }
}
setInterval(() => state.campaign && codes(), 2000);

// What /readyz says is degraded (the provider's circuit breaker among them): paused work that
// leaves the server serving. With METRICS_TOKEN set, /readyz keeps that detail to its holders.
function watchHealth() {
  const poll = async () => {
    try {
      const r = await fetch('/readyz', { cache: 'no-store' });
      const body = await r.json();
      const parts = Object.entries(body.degraded ?? {});
      if (!body.ok) parts.unshift(['server', `not ready: ${Object.keys(body.failing ?? {}).join(', ') || 'starting'}`]);
      $('#health').hidden = parts.length === 0;
      $('#degraded').replaceChildren(
        ...parts.map(([part, why]) => {
          const li = document.createElement('li');
          li.dataset.part = part;
          const b = document.createElement('b');
          b.textContent = part;
          li.append(b, `: ${why}`);
          return li;
        }),
      );
    } catch {
      // the server is gone for a moment: the next poll tells
    }
  };
  poll();
  setInterval(poll, 2000);
}

function show(c) {
  if (c.id !== state.campaign) return;
  // its row in the list follows the pushes too
  const listed = [...document.querySelectorAll('#campaigns tbody tr')].find((tr) => tr.dataset.id === c.id);
  if (listed) [c.status, c.stock, c.entrants, c.winners, c.remaining].forEach((v, i) => text(listed.children[i + 2], v));
  else if (Date.now() - (state.listedAt ?? 0) >= 1000) {
    // a campaign just created reaches the list (the Postgres read side) a moment after its counters
    state.listedAt = Date.now();
    loadCampaigns().catch(() => undefined);
  }
  text($('#drop-status'), c.status);
  text($('#c-entrants'), c.entrants);
  text($('#c-winners'), c.winners);
  text($('#c-remaining'), c.remaining);
  text($('#c-stock'), c.stock);
  const now = Date.now();
  const prev = state.samples.at(-1);
  const rate = prev && now > prev.t ? ((c.entrants - prev.entrants) * 1000) / (now - prev.t) : 0;
  state.samples.push({ t: now, entrants: c.entrants, remaining: c.remaining, stock: c.stock, rate: Math.max(0, rate) });
  if (c.remaining === 0 && state.soldOutAt === null && c.stock > 0) {
    state.soldOutAt = now;
    text($('#sold-out-at'), `at ${new Date(now).toLocaleTimeString()}`);
  }
  text($('#c-rate'), Math.round(state.samples.at(-1).rate));
  draw();
  // the pages follow the counters (the Postgres read side may trail them by a moment)
  const shown = Math.min(Number($('#winners').dataset.total ?? 0), Number($('#gifticons').dataset.total ?? 0));
  if (now - (state.pagesAt ?? 0) >= 1000 && c.winners > shown) {
    state.pagesAt = now;
    page('winners', true);
    page('gifticons', true);
  }
}

// Counters are pushed only while they change: a quiet drop is sampled once a second so the
// rate line falls back to zero.
setInterval(() => {
  const last = state.samples.at(-1);
  if (last && Date.now() - last.t >= 1000)
    show({ ...last, id: state.campaign, status: $('#drop-status').textContent, winners: Number($('#c-winners').textContent) });
}, 1000);

function draw() {
  const canvas = $('#chart');
  const g = canvas.getContext('2d');
  const W = canvas.width,
    H = canvas.height,
    pad = 36;
  g.clearRect(0, 0, W, H);
  const s = state.samples;
  const last = s.at(-1);
  canvas.dataset.points = String(s.length);
  canvas.dataset.entrants = String(last?.entrants ?? 0);
  canvas.dataset.remaining = String(last?.remaining ?? '');
  canvas.dataset.soldOut = state.soldOutAt === null ? '' : new Date(state.soldOutAt).toISOString();
  if (s.length < 2) return;
  const t0 = s[0].t,
    t1 = Math.max(s.at(-1).t, t0 + 1000);
  const maxRate = Math.max(1, ...s.map((p) => p.rate));
  const stock = Math.max(1, last.stock);
  const x = (t) => pad + ((t - t0) / (t1 - t0)) * (W - 2 * pad);
  const yRate = (v) => H - pad - (v / maxRate) * (H - 2 * pad);
  const yStock = (v) => H - pad - (v / stock) * (H - 2 * pad);
  g.strokeStyle = '#ccd';
  g.lineWidth = 1;
  g.beginPath();
  g.moveTo(pad, H - pad);
  g.lineTo(W - pad, H - pad);
  g.stroke();
  g.fillStyle = '#555';
  g.font = '11px system-ui';
  g.fillText(`${Math.round(maxRate)}/s`, 2, pad);
  g.fillText(`${stock}`, W - pad + 4, pad);
  g.fillText(`${((t1 - t0) / 1000).toFixed(1)} s`, W - pad - 30, H - pad + 14);
  const line = (color, y) => {
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    s.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p)) : g.moveTo(x(p.t), y(p))));
    g.stroke();
  };
  line('#2b6cff', (p) => yRate(p.rate));
  line('#11a36b', (p) => yStock(p.remaining));
  if (state.soldOutAt !== null) {
    const sx = x(state.soldOutAt);
    g.strokeStyle = '#d22';
    g.setLineDash([5, 4]);
    g.beginPath();
    g.moveTo(sx, pad / 2);
    g.lineTo(sx, H - pad);
    g.stroke();
    g.setLineDash([]);
    g.fillStyle = '#d22';
    g.fillText('sold out', sx + 4, pad / 2 + 10);
  }
}

// ── winners and gifticons, a page at a time ────────────────────────────────
const pageSeq = {};
async function page(kind, first = false) {
  const id = state.campaign;
  const after = first ? null : state.cursors[kind];
  // the latest request wins: an automatic refresh answered late never overwrites a page asked after it
  const seq = (pageSeq[kind] = (pageSeq[kind] ?? 0) + 1);
  const fields = kind === 'winners' ? 'position userId wonAt' : 'userId code issuedAt';
  try {
    const d = await gql(
      `query($c: ID!, $after: String) { ${kind}(campaignId: $c, first: 20, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { ${fields} } } } }`,
      { c: id, after },
    );
    if (id !== state.campaign || seq !== pageSeq[kind]) return;
    const conn = d[kind];
    state.cursors[kind] = conn.pageInfo.hasNextPage ? conn.pageInfo.endCursor : null;
    $(`#${kind}-next`).disabled = !conn.pageInfo.hasNextPage;
    $(`#${kind}`).dataset.total = String(conn.totalCount);
    $(`#${kind} tbody`).replaceChildren(
      ...conn.edges.map(({ node: n }) =>
        row(kind === 'winners' ? [n.position, n.userId, time(n.wonAt)] : [n.userId, n.code ?? '(needs codes:read)', time(n.issuedAt)]),
      ),
    );
  } catch (err) {
    $(`#${kind} tbody`).replaceChildren(row([err.message]));
  }
}

// ── report and replay jobs, with their progress ────────────────────────────
async function startJob(mutation, variables) {
  const d = await gql(mutation, variables).catch((err) => ({ err }));
  if (d.err) return void $('#jobs tbody').append(row(['', 'FAILED', '', d.err.message]));
  const job = Object.values(d)[0];
  const bar = document.createElement('progress');
  bar.max = 1;
  const tr = row([job.name, job.status, bar, '']);
  tr.dataset.job = job.id;
  $('#jobs tbody').append(tr);
  for (;;) {
    const j = (await gql(`query($id: ID!) { job(id: $id) { status progress error } }`, { id: job.id })).job;
    text(tr.children[1], j.status);
    bar.value = j.progress;
    text(tr.children[3], j.error);
    if (j.status === 'SUCCEEDED' || j.status === 'FAILED') {
      tr.dataset.status = j.status;
      if (job.name.includes('report') && j.status === 'SUCCEEDED') showReport();
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function showReport() {
  const d = await gql(`query($c: ID!) { report(campaignId: $c) { entrants requests winners issued firstEntryAt soldOutAt generatedAt } }`, {
    c: state.campaign,
  });
  text($('#report-out'), JSON.stringify(d.report, null, 2));
}

// ── wiring ────────────────────────────────────────────────────────────────
$('#sign-in-button').addEventListener('click', () => signIn($('#token').value));
$('#sign-out').addEventListener('click', signOut);
$('#refresh').addEventListener('click', () => loadCampaigns().catch((err) => alert(err.message)));
$('#create').addEventListener('submit', create);
$('#close').addEventListener('click', () =>
  gql(`mutation($id: ID!) { closeCampaign(id: $id) { status } }`, { id: state.campaign }).then(loadCampaigns, (err) => alert(err.message)),
);
$('#winners-next').addEventListener('click', () => page('winners'));
$('#gifticons-next').addEventListener('click', () => page('gifticons'));
$('#report').addEventListener('click', () =>
  startJob(`mutation($c: ID!) { requestReport(campaignId: $c) { id name status } }`, { c: state.campaign }),
);
$('#replay').addEventListener('click', () =>
  startJob(`mutation($t: ReplayTarget!, $c: ID) { replay(target: $t, campaignId: $c) { id name status } }`, {
    t: $('#replay-target').value,
    c: state.campaign,
  }),
);

// a token in the fragment (npm run demo -- --watch prints one) never reaches the server's logs
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) history.replaceState(null, '', location.pathname);
const saved = fromHash ?? sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved);
