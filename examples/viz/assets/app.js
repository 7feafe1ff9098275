// The Cyclon visualisation page: draws GET /api/graph (pushed by GET /api/events) as an SVG
// graph and drives the network through the same JSON API. No libraries, no build step.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';

// Entry ages in buckets: [lowest age, colour, stroke width].
const AGE_BUCKETS = [
  [0, '#2dd4bf', 2.6],
  [1, '#a3e635', 2.1],
  [2, '#facc15', 1.7],
  [4, '#fb923c', 1.4],
  [7, '#f43f5e', 1.1],
  [11, '#9f1239', 0.9],
];
const DEAD_COLOUR = '#f87171';

const $ = (id) => document.getElementById(id);

const view = {
  graph: null,
  selected: null, // peer id
  layout: 'force',
  positions: new Map(), // id -> {x, y, vx, vy}
  nodeEls: new Map(), // id -> <g>
  edgeEls: new Map(), // "source>target" -> <path>
  completed: new Map(), // id -> shuffles_completed seen last
  alpha: 1,
  width: 800,
  height: 600,
  rates: [],
  lastRateSample: 0,
  shape: '', // node and link ids of the last graph drawn
  intervalShown: null, // the interval last written into the interval field
};

// ---------------------------------------------------------------------------------------
// API

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
  }
  if (!response.ok) {
    throw new Error((data && data.error) || `${method} ${path}: HTTP ${response.status}`);
  }
  return data;
}

let toastTimer = null;
function toast(message, kind) {
  const el = $('toast');
  el.textContent = message;
  el.className = `show ${kind || ''}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = ''; }, 3500);
}

async function refresh() {
  try {
    render(await api('GET', '/api/graph'));
  } catch (error) {
    toast(error.message);
  }
}

async function action(promise, success) {
  try {
    const result = await promise;
    if (success) success(result);
  } catch (error) {
    toast(error.message);
  }
  await refresh();
}

// ---------------------------------------------------------------------------------------
// Helpers

function bucket(age) {
  let found = AGE_BUCKETS[0];
  for (const b of AGE_BUCKETS) {
    if (age >= b[0]) found = b;
  }
  return found;
}

function bucketIndex(age) {
  return AGE_BUCKETS.indexOf(bucket(age));
}

function svg(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

function nodeRadius(node) {
  return 6 + Math.min(node.in_degree, 24) * 0.45;
}

function labelOf(id) {
  const node = view.graph && view.graph.nodes.find((n) => n.id === id);
  return node ? node.label : `…${id.slice(-6)}`;
}

// ---------------------------------------------------------------------------------------
// Rendering

function setupMarkers() {
  const defs = $('markers');
  const colours = AGE_BUCKETS.map((b) => b[1]).concat([DEAD_COLOUR]);
  colours.forEach((colour, i) => {
    const marker = svg('marker', {
      id: `arrow-${i}`, viewBox: '0 0 10 10', refX: 9, refY: 5,
      markerWidth: 5, markerHeight: 5, orient: 'auto-start-reverse',
    });
    marker.appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: colour }));
    defs.appendChild(marker);
  });
  const legend = $('legend');
  legend.append('entry age:');
  AGE_BUCKETS.forEach((b, i) => {
    const next = AGE_BUCKETS[i + 1];
    const range = next ? (next[0] - 1 > b[0] ? `${b[0]}–${next[0] - 1}` : `${b[0]}`) : `${b[0]}+`;
    const item = document.createElement('span');
    item.innerHTML = `<span class="swatch" style="height:${b[2] + 1}px;background:${b[1]}"></span> ${range}`;
    legend.appendChild(item);
  });
  const dead = document.createElement('span');
  dead.innerHTML = `<span class="swatch" style="height:2px;background:repeating-linear-gradient(90deg,${DEAD_COLOUR} 0 4px,transparent 4px 7px)"></span> dead link`;
  legend.appendChild(dead);
}

function render(graph) {
  view.graph = graph;
  const ids = new Set(graph.nodes.map((n) => n.id));
  if (view.selected && !ids.has(view.selected)) view.selected = null;

  // Positions: the first picture starts on a circle around the pane's centre (a ring
  // bootstrap shows as the ring it is); peers added later start next to a neighbour; gone
  // ones are dropped.
  const first = view.positions.size === 0;
  graph.nodes.forEach((node, i) => {
    if (view.positions.has(node.id)) return;
    const link = !first && graph.edges.find((e) => (e.source === node.id && view.positions.has(e.target))
      || (e.target === node.id && view.positions.has(e.source)));
    let x;
    let y;
    if (link) {
      const other = view.positions.get(link.source === node.id ? link.target : link.source);
      x = other.x + (Math.random() - 0.5) * 60;
      y = other.y + (Math.random() - 0.5) * 60;
    } else {
      const angle = (2 * Math.PI * i) / Math.max(graph.nodes.length, 1) - Math.PI / 2;
      const r = Math.min(view.width, view.height - 24) * 0.35;
      x = view.width / 2 + r * Math.cos(angle);
      y = (view.height - 24) / 2 + r * Math.sin(angle);
    }
    view.positions.set(node.id, { x, y, vx: 0, vy: 0 });
  });
  for (const id of [...view.positions.keys()]) {
    if (!ids.has(id)) view.positions.delete(id);
  }

  renderNodes(graph);
  renderEdges(graph);
  // Reheat the layout only when the overlay's shape changed, so that it settles otherwise.
  const shape = graph.nodes.map((n) => n.id).join() + graph.edges.map((e) => `${e.source}>${e.target}`).sort().join();
  if (shape !== view.shape) {
    view.shape = shape;
    view.alpha = Math.max(view.alpha, 0.25);
  }
  renderPanel(graph);
  draw();
}

function renderNodes(graph) {
  const layer = $('nodes');
  const selectedNeighbours = new Set(
    graph.edges.filter((e) => e.source === view.selected).map((e) => e.target),
  );
  const seen = new Set();
  for (const node of graph.nodes) {
    seen.add(node.id);
    let g = view.nodeEls.get(node.id);
    if (!g) {
      g = svg('g', { class: 'node', 'data-id': node.id });
      g.appendChild(svg('circle', { r: 7 }));
      const text = svg('text', { dx: 10, dy: 4 });
      g.appendChild(text);
      g.appendChild(svg('title'));
      g.addEventListener('click', (event) => {
        event.stopPropagation();
        clickPeer(node.id);
      });
      layer.appendChild(g);
      view.nodeEls.set(node.id, g);
    }
    const classes = ['node', node.alive ? 'alive' : 'dead'];
    if (node.paused && node.alive) classes.push('paused');
    if (node.id === view.selected) classes.push('selected');
    if (selectedNeighbours.has(node.id)) classes.push('neighbour');
    const previous = view.completed.get(node.id);
    if (previous !== undefined && node.shuffles_completed > previous) classes.push('pulse');
    view.completed.set(node.id, node.shuffles_completed);
    g.setAttribute('class', classes.join(' '));
    g.setAttribute('data-label', node.label);
    g.querySelector('circle').setAttribute('r', nodeRadius(node).toFixed(1));
    g.querySelector('text').textContent = node.label;
    g.querySelector('title').textContent = node.alive
      ? `${node.label} ${node.id}\nview ${node.view_len}, in-degree ${node.in_degree}\n`
        + `shuffles ${node.shuffles_completed}/${node.shuffles_started} completed, `
        + `${node.shuffles_answered} answered\nclick: shuffle now`
      : `${node.label} (dead) ${node.id}\nstill in ${node.in_degree} views`;
  }
  for (const [id, g] of view.nodeEls) {
    if (!seen.has(id)) {
      g.remove();
      view.nodeEls.delete(id);
      view.completed.delete(id);
    }
  }
}

function renderEdges(graph) {
  const layer = $('edges');
  const seen = new Set();
  for (const edge of graph.edges) {
    const key = `${edge.source}>${edge.target}`;
    seen.add(key);
    let path = view.edgeEls.get(key);
    if (!path) {
      path = svg('path', { class: 'edge' });
      layer.appendChild(path);
      view.edgeEls.set(key, path);
    }
    const [, colour, width] = bucket(edge.age);
    const classes = ['edge'];
    if (edge.dead) classes.push('dead');
    if (edge.source === view.selected) classes.push('out');
    if (edge.target === view.selected) classes.push('in');
    path.setAttribute('class', classes.join(' '));
    path.setAttribute('stroke', edge.dead ? DEAD_COLOUR : colour);
    path.setAttribute('stroke-width', edge.dead ? 1.2 : width);
    path.setAttribute('marker-end', `url(#arrow-${edge.dead ? AGE_BUCKETS.length : bucketIndex(edge.age)})`);
    path.edge = edge;
  }
  for (const [key, path] of view.edgeEls) {
    if (!seen.has(key)) {
      path.remove();
      view.edgeEls.delete(key);
    }
  }
  $('graph').classList.toggle('faded', view.selected !== null);
}

function draw() {
  for (const [id, g] of view.nodeEls) {
    const p = view.positions.get(id);
    if (p) g.setAttribute('transform', `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`);
  }
  const radius = new Map((view.graph ? view.graph.nodes : []).map((n) => [n.id, nodeRadius(n)]));
  for (const path of view.edgeEls.values()) {
    const { source, target } = path.edge;
    const a = view.positions.get(source);
    const b = view.positions.get(target);
    if (!a || !b) continue;
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const d = Math.hypot(dx, dy) || 1;
    // Bend to the right of the direction of travel, so that a->b and b->a stay apart.
    const bend = Math.min(0.15 * d, 30);
    const cx = (a.x + b.x) / 2 - (dy / d) * bend;
    const cy = (a.y + b.y) / 2 + (dx / d) * bend;
    // End at the target's rim, along the curve's last tangent.
    const tx = b.x - cx;
    const ty = b.y - cy;
    const td = Math.hypot(tx, ty) || 1;
    const stop = (radius.get(target) || 7) + 2;
    const ex = b.x - (tx / td) * stop;
    const ey = b.y - (ty / td) * stop;
    path.setAttribute('d', `M${a.x.toFixed(1)},${a.y.toFixed(1)} Q${cx.toFixed(1)},${cy.toFixed(1)} ${ex.toFixed(1)},${ey.toFixed(1)}`);
  }
}

// ---------------------------------------------------------------------------------------
// Layout

function layoutStep() {
  const graph = view.graph;
  if (!graph || view.alpha < 0.005) return false;
  const nodes = graph.nodes.map((n) => view.positions.get(n.id)).filter(Boolean);
  const n = nodes.length;
  const w = view.width;
  const h = view.height;
  const margin = 30;
  if (view.layout === 'circle') {
    const r = Math.min(w, h - 24) / 2 - margin - 10;
    graph.nodes.forEach((node, i) => {
      const p = view.positions.get(node.id);
      const angle = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
      p.x += (w / 2 + r * Math.cos(angle) - p.x) * 0.2;
      p.y += ((h - 24) / 2 + r * Math.sin(angle) - p.y) * 0.2;
    });
    view.alpha *= 0.9;
    return true;
  }
  const k = Math.sqrt((w * h) / Math.max(n, 1)) * 0.75; // ideal distance
  for (let i = 0; i < n; i += 1) {
    const a = nodes[i];
    for (let j = i + 1; j < n; j += 1) {
      const b = nodes[j];
      let dx = a.x - b.x;
      let dy = a.y - b.y;
      let d2 = dx * dx + dy * dy;
      if (d2 < 0.01) {
        dx = Math.random() - 0.5;
        dy = Math.random() - 0.5;
        d2 = 0.01;
      }
      const f = (k * k) / d2 * 0.05;
      a.vx += dx * f; a.vy += dy * f;
      b.vx -= dx * f; b.vy -= dy * f;
    }
  }
  const links = new Set();
  for (const e of graph.edges) {
    const key = e.source < e.target ? `${e.source}|${e.target}` : `${e.target}|${e.source}`;
    if (links.has(key)) continue;
    links.add(key);
    const a = view.positions.get(e.source);
    const b = view.positions.get(e.target);
    if (!a || !b) continue;
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const d = Math.hypot(dx, dy) || 1;
    const f = ((d - k) / d) * 0.02;
    a.vx += dx * f; a.vy += dy * f;
    b.vx -= dx * f; b.vy -= dy * f;
  }
  // Keep the drawing centred in the pane (above the legend): moving every peer alike changes
  // no force.
  if (n > 0) {
    const cx = nodes.reduce((sum, p) => sum + p.x, 0) / n;
    const cy = nodes.reduce((sum, p) => sum + p.y, 0) / n;
    const shiftX = (w / 2 - cx) * 0.1;
    const shiftY = ((h - 24) / 2 - cy) * 0.1;
    for (const p of nodes) {
      p.x += shiftX;
      p.y += shiftY;
    }
  }
  for (const p of nodes) {
    // Gravity to the centre, weaker along the longer side so that the graph fills the pane.
    p.vx += (w / 2 - p.x) * 0.003 * Math.min(1, h / w);
    p.vy += ((h - 24) / 2 - p.y) * 0.003 * Math.min(1, w / h);
    const speed = Math.hypot(p.vx, p.vy);
    const limit = 40 * view.alpha + 0.5;
    if (speed > limit) {
      p.vx *= limit / speed;
      p.vy *= limit / speed;
    }
    p.x = Math.min(w - margin, Math.max(margin, p.x + p.vx * view.alpha));
    // Keep clear of the legend along the bottom edge.
    p.y = Math.min(h - margin - 24, Math.max(margin, p.y + p.vy * view.alpha));
    p.vx *= 0.55;
    p.vy *= 0.55;
  }
  view.alpha *= 0.99;
  return true;
}

function frame() {
  if (layoutStep()) draw();
  requestAnimationFrame(frame);
}

function resize() {
  const box = $('graph').getBoundingClientRect();
  const w = Math.max(box.width, 200);
  const h = Math.max(box.height, 200);
  for (const p of view.positions.values()) {
    p.x *= w / view.width;
    p.y *= h / view.height;
  }
  view.width = w;
  view.height = h;
  $('graph').setAttribute('viewBox', `0 0 ${w} ${h}`);
  view.alpha = Math.max(view.alpha, 0.3);
}

// ---------------------------------------------------------------------------------------
// Side panel

function renderPanel(graph) {
  const { stats, settings } = graph;
  $('peer-count').textContent = stats.dead_peers
    ? `${stats.peers} alive, ${stats.dead_peers} dead still known`
    : `${stats.peers} alive`;
  $('edge-count').textContent = `${stats.edges}`;
  const dead = $('dead-links');
  dead.textContent = `${stats.dead_links}`;
  dead.className = stats.dead_links ? 'bad' : 'good';
  const connected = $('connected');
  connected.textContent = stats.connected
    ? 'connected'
    : `not connected (${stats.components} components)`;
  connected.className = stats.connected ? 'good' : 'bad';
  $('rate').textContent = stats.shuffles_per_second.toFixed(1);
  $('toggle-pause').textContent = settings.paused ? 'Resume all' : 'Pause all';
  // Only a new interval overwrites the field, so that refreshes never clobber an edit.
  const interval = $('interval');
  if (settings.interval_ms !== view.intervalShown && document.activeElement !== interval) {
    view.intervalShown = settings.interval_ms;
    interval.value = settings.interval_ms;
  }
  $('params').textContent = `c = ${settings.view_size}, l = ${settings.shuffle_length}, `
    + `${settings.mode} shuffling, every ${settings.interval_ms} ms`
    + `${settings.paused ? ' (paused)' : ''}; ${stats.shuffles_completed} shuffles so far`;

  const now = performance.now();
  if (now - view.lastRateSample >= 1000) {
    view.lastRateSample = now;
    view.rates.push(stats.shuffles_per_second);
    if (view.rates.length > 60) view.rates.shift();
    renderSpark();
  }
  renderHistogram(stats.in_degree_histogram);
  renderSelected(graph);
}

function renderSpark() {
  const el = $('rate-spark');
  const w = el.clientWidth || 300;
  const h = el.clientHeight || 36;
  const max = Math.max(1, ...view.rates);
  const step = w / 59;
  const points = view.rates
    .map((r, i) => `${(i * step).toFixed(1)},${(h - 2 - (r / max) * (h - 6)).toFixed(1)}`)
    .join(' ');
  el.innerHTML = `<polyline points="${points}" fill="none" stroke="#38bdf8" stroke-width="1.5"/>`
    + `<text x="${w - 2}" y="10" text-anchor="end" fill="#94a3b8" font-size="9">max ${max.toFixed(1)}/s</text>`;
}

function renderHistogram(histogram) {
  const el = $('histogram');
  const w = el.clientWidth || 300;
  const h = el.clientHeight || 120;
  const bins = Math.max(histogram.length, 1);
  const max = Math.max(1, ...histogram);
  const bw = w / bins;
  let out = '';
  histogram.forEach((count, degree) => {
    const bh = (count / max) * (h - 28);
    const x = degree * bw;
    out += `<rect x="${(x + 1).toFixed(1)}" y="${(h - 14 - bh).toFixed(1)}" width="${Math.max(bw - 2, 1).toFixed(1)}" height="${bh.toFixed(1)}"><title>in-degree ${degree}: ${count} peers</title></rect>`;
    if (count) out += `<text x="${(x + bw / 2).toFixed(1)}" y="${(h - 17 - bh).toFixed(1)}" text-anchor="middle">${count}</text>`;
    if (bins <= 24 || degree % 2 === 0) out += `<text x="${(x + bw / 2).toFixed(1)}" y="${h - 3}" text-anchor="middle">${degree}</text>`;
  });
  el.innerHTML = out;
}

function renderSelected(graph) {
  const node = graph.nodes.find((n) => n.id === view.selected);
  $('selected').hidden = !node;
  $('selected-hint').hidden = Boolean(node);
  $('kill-peer').disabled = !node || !node.alive;
  if (!node) return;
  $('selected-label').textContent = node.label;
  const state = $('selected-state');
  state.textContent = node.alive ? (node.paused ? 'paused' : 'alive') : 'dead';
  state.className = `badge ${node.alive ? '' : 'dead'}`;
  $('shuffle-selected').disabled = !node.alive;
  $('selected-id').textContent = node.id;
  $('selected-address').textContent = node.address;
  $('selected-view-len').textContent = `${node.view_len} of ${graph.settings.view_size}`;
  $('selected-in-degree').textContent = `${node.in_degree}`;
  $('selected-shuffles').textContent = `${node.shuffles_completed} completed, `
    + `${node.shuffles_failed} failed, of ${node.shuffles_started}`;
  $('selected-answered').textContent = `${node.shuffles_answered}`;

  const entries = graph.edges
    .filter((e) => e.source === node.id)
    .sort((a, b) => b.age - a.age || labelOf(a.target).localeCompare(labelOf(b.target)));
  const body = $('selected-view').querySelector('tbody');
  body.replaceChildren(...entries.map((e) => {
    const tr = document.createElement('tr');
    tr.dataset.peer = e.target;
    if (e.dead) tr.className = 'dead';
    const colour = e.dead ? DEAD_COLOUR : bucket(e.age)[1];
    tr.innerHTML = `<td><span class="swatch" style="background:${colour}"></span>${labelOf(e.target)}</td>`
      + `<td class="age">${e.age}</td><td>${e.dead ? 'dead' : 'alive'}</td>`;
    tr.addEventListener('click', () => select(e.target));
    return tr;
  }));
}

// ---------------------------------------------------------------------------------------
// Controls

function select(id) {
  view.selected = id;
  if (view.graph) {
    renderNodes(view.graph);
    renderEdges(view.graph);
    renderSelected(view.graph);
  }
}

function clickPeer(id) {
  select(id);
  const node = view.graph.nodes.find((n) => n.id === id);
  if (!node || !node.alive) return;
  action(api('POST', `/api/peers/${id}/shuffle`), () => toast(`${node.label} shuffles now`, 'info'));
}

function setupControls() {
  $('add-peer').addEventListener('click', () => action(api('POST', '/api/peers'), (node) => {
    toast(`${node.label} joined`, 'info');
  }));
  $('kill-peer').addEventListener('click', () => {
    const id = view.selected;
    if (!id) return;
    const label = labelOf(id);
    action(api('DELETE', `/api/peers/${id}`), () => toast(`${label} killed`, 'info'));
  });
  $('shuffle-selected').addEventListener('click', () => {
    if (view.selected) clickPeer(view.selected);
  });
  $('toggle-pause').addEventListener('click', () => {
    const paused = !(view.graph && view.graph.settings.paused);
    action(api('PUT', '/api/settings', { paused }));
  });
  $('interval-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const interval = Number($('interval').value);
    action(api('PUT', '/api/settings', { interval_ms: interval }), (s) => {
      toast(`shuffle interval ${s.interval_ms} ms`, 'info');
    });
  });
  $('layout').addEventListener('change', (event) => {
    view.layout = event.target.value;
    view.alpha = 1;
  });
  $('graph').addEventListener('click', () => select(null));
  window.addEventListener('resize', resize);
}

function connect() {
  const status = $('status');
  const events = new EventSource('/api/events');
  events.addEventListener('graph', (event) => {
    status.textContent = 'live';
    status.className = 'status live';
    render(JSON.parse(event.data));
  });
  events.addEventListener('error', () => {
    status.textContent = 'disconnected, retrying…';
    status.className = 'status down';
  });
}

setupMarkers();
setupControls();
resize();
refresh();
connect();
requestAnimationFrame(frame);
