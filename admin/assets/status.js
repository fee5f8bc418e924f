// dotproxy status page: fetches /api/status every 2 s and updates the
// server-rendered page in place. Text only ever goes in through
// textContent: upstream names and errors come from config and the network.
'use strict';

(function () {
	const pollMs = 2000; // how often to fetch a snapshot
	const timeoutMs = 5000; // give up on one fetch after this
	const windowMs = 30000; // rates and shares are over about this long

	// Snapshots kept for the rate window, oldest first.
	let history = [];

	const byId = (id) => document.getElementById(id);

	function setText(el, text) {
		if (el && el.textContent !== text) {
			el.textContent = text;
		}
	}

	// Formatting: the same rules as the server's first render (format.go).
	function count(n) {
		return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
	}
	function rate(perSec) {
		if (perSec <= 0) return '0/s';
		if (perSec < 1) return rateUnit(perSec * 60, '/min');
		return rateUnit(perSec, '/s');
	}
	function rateUnit(n, unit) {
		if (n < 9.95) return n.toFixed(1) + unit;
		return count(Math.round(n)) + unit;
	}
	function percent(num, den) {
		if (den <= 0) return '\u2014';
		const p = (100 * num) / den;
		if (num > 0 && p < 0.1) return '<0.1%';
		return p.toFixed(1) + '%';
	}
	function rtt(ms) {
		if (!(ms > 0)) return '\u2014';
		if (ms < 9.95) return ms.toFixed(1) + ' ms';
		return count(Math.round(ms)) + ' ms';
	}
	function span(sec) {
		sec = Math.max(0, Math.floor(sec));
		const d = Math.floor(sec / 86400), h = Math.floor(sec / 3600) % 24;
		const m = Math.floor(sec / 60) % 60, s = sec % 60;
		if (sec < 60) return s + 's';
		if (sec < 3600) return m + 'm ' + s + 's';
		if (sec < 86400) return h + 'h ' + m + 'm';
		return d + 'd ' + h + 'h';
	}
	function ago(sec) {
		if (sec < 1) return 'just now';
		if (sec < 60) return Math.floor(sec) + ' s ago';
		if (sec < 3600) return Math.floor(sec / 60) + ' min ago';
		if (sec < 86400) return Math.floor(sec / 3600) + ' h ago';
		return Math.floor(sec / 86400) + ' d ago';
	}
	// transport names a server's transport: plain DNS for a forward
	// rule's server without TLS, whose status has none.
	function transport(t) {
		return t || 'plain';
	}
	function clock(date) {
		const two = (n) => String(n).padStart(2, '0');
		return two(date.getHours()) + ':' + two(date.getMinutes()) + ':' + two(date.getSeconds());
	}

	// A snapshot as numbers: times in ms since the epoch.
	function parse(s) {
		return {
			s: s,
			t: Date.parse(s.time),
			started: Date.parse(s.started_at),
		};
	}

	// The zero snapshot at process start: rates from it are averages
	// since start, what the page shows before it has two snapshots.
	function atStart(cur) {
		return {
			s: {
				queries: 0,
				upstreams: [],
				cache: cur.s.cache && { hits: 0, misses: 0 },
				filter: cur.s.filter && { blocked: 0 },
			},
			t: cur.started,
			started: cur.started,
		};
	}

	// wentBack reports whether any counter decreased (a restart, or a
	// component rebuilt by a reload): the window must start again.
	function wentBack(old, cur) {
		if (old.started !== cur.started || cur.s.queries < old.s.queries) return true;
		const o = old.s, c = cur.s;
		if (o.cache && c.cache && (c.cache.hits < o.cache.hits || c.cache.misses < o.cache.misses)) return true;
		if (o.filter && c.filter && c.filter.blocked < o.filter.blocked) return true;
		const before = new Map(old.s.upstreams.map((u) => [u.name, u.queries]));
		return cur.s.upstreams.some((u) => before.has(u.name) && u.queries < before.get(u.name));
	}

	function remember(cur) {
		if (history.length > 0 && wentBack(history[history.length - 1], cur)) {
			history = [];
		}
		history.push(cur);
		// Keep the oldest snapshot that still lies within the window.
		while (history.length > 2 && cur.t - history[1].t >= windowMs) {
			history.shift();
		}
		return history.length > 1 ? history[0] : atStart(cur);
	}

	function render(cur) {
		const base = remember(cur);
		const s = cur.s, b = base.s;
		const secs = Math.max((cur.t - base.t) / 1000, 0.001);

		setText(byId('version'), s.version);
		setText(byId('uptime'), span((cur.t - cur.started) / 1000));
		const when = byId('updated-time');
		setText(when, clock(new Date(cur.t)));
		when.setAttribute('datetime', s.time);
		const dq = s.queries - b.queries;
		let windowText = base.t === cur.started ? 'average since start' : 'last ' + Math.round(secs) + ' s';
		if (dq === 0) windowText += ', no queries';
		setText(byId('window'), windowText);

		setText(byId('query-rate'), rate(dq / secs));
		setText(byId('query-total'), count(s.queries) + ' queries since start');

		if (s.cache) {
			const bc = b.cache || { hits: 0, misses: 0 };
			const hits = s.cache.hits - bc.hits, misses = s.cache.misses - bc.misses;
			setText(byId('cache-rate'), percent(hits, hits + misses));
			setText(byId('cache-detail'), count(s.cache.entries) + ' entries \u00b7 ' + count(s.cache.stale) + ' stale answers');
		} else {
			setText(byId('cache-rate'), 'off');
			setText(byId('cache-detail'), 'the cache is off');
		}
		if (s.filter) {
			const blocked = s.filter.blocked - (b.filter ? b.filter.blocked : 0);
			setText(byId('blocked-share'), percent(blocked, dq));
			const pending = s.filter.pending_lists || [];
			setText(byId('blocked-detail'), count(s.filter.blocked) + ' blocked \u00b7 ' + count(s.filter.rules) + ' rules' +
				(pending.length ? ' \u00b7 loading ' + pending.join(', ') : ''));
		} else {
			setText(byId('blocked-share'), 'off');
			setText(byId('blocked-detail'), 'the filter is off');
		}
		renderUpstreams(s, b, cur.t / 1000);
		renderForward(s.forward || [], cur.t / 1000);
		renderClients(s.clients || [], s.queries);
	}

	// renderClients rebuilds the top-clients table: each client's queries
	// and share of all queries since start, as the server counts them.
	function renderClients(clients, queries) {
		const rows = clients.map((c) => {
			const tr = document.createElement('tr');
			const th = document.createElement('th');
			th.scope = 'row';
			const n = document.createElement('span');
			n.className = 'name';
			n.textContent = c.name || '\u2014';
			const addr = document.createElement('span');
			addr.className = 'addr';
			addr.textContent = c.address;
			th.append(n, ' ', addr);
			tr.append(th);
			const num = tr.insertCell();
			num.dataset.label = 'Queries since start';
			num.className = 'num';
			num.textContent = count(c.queries);
			const td = tr.insertCell();
			td.dataset.label = 'Share of queries';
			td.className = 'num';
			const share = document.createElement('span');
			share.className = 'share';
			share.textContent = percent(c.queries, queries);
			const meter = document.createElement('meter');
			meter.setAttribute('aria-hidden', 'true');
			meter.min = 0;
			meter.max = 100;
			meter.value = queries > 0 ? (100 * c.queries) / queries : 0;
			td.append(share, ' ', meter);
			return tr;
		});
		if (rows.length === 0) {
			const tr = document.createElement('tr');
			tr.className = 'empty';
			const td = tr.insertCell();
			td.colSpan = 3;
			td.textContent = 'No queries yet.';
			rows.push(tr);
		}
		byId('clients').replaceChildren(...rows);
	}

	// renderForward rebuilds the forwarding table: one row per rule's
	// server, its share of the rule's answers since start (the rules are
	// few and their servers' traffic small, so no window is kept).
	function renderForward(rules, nowSec) {
		byId('forward-section').hidden = rules.length === 0;
		const rows = [];
		rules.forEach((f) => {
			const total = f.servers.reduce((a, u) => a + u.queries, 0);
			const shown = f.domains.slice(0, 5).join(', ') + (f.domains.length > 5 ? ', \u2026' : '');
			f.servers.forEach((u) => {
				const r = newRow(u.name);
				setText(r.querySelector('.name'), shown);
				fillRow(r, u, u.queries, total, nowSec);
				rows.push(r);
			});
		});
		byId('forward').replaceChildren(...rows);
	}

	function renderUpstreams(s, b, nowSec) {
		const before = new Map(b.upstreams.map((u) => [u.name, u.queries]));
		const answered = s.upstreams.map((u) => u.queries - (before.get(u.name) || 0));
		const total = answered.reduce((a, n) => a + n, 0);

		const tbody = byId('upstreams');
		let rows = Array.from(tbody.rows).filter((r) => r.dataset.name !== undefined);
		const same = rows.length === s.upstreams.length && rows.every((r, i) => r.dataset.name === s.upstreams[i].name);
		if (!same) {
			rows = s.upstreams.map((u) => newRow(u.name));
			if (rows.length === 0) {
				const tr = document.createElement('tr');
				tr.className = 'empty';
				const td = tr.insertCell();
				td.colSpan = 7;
				td.textContent = 'No upstreams configured.';
				rows = [tr];
			}
			tbody.replaceChildren(...rows);
		}
		s.upstreams.forEach((u, i) => fillRow(rows[i], u, answered[i], total, nowSec));
	}

	// fillRow writes server u's figures into its row r; answered of
	// total answers is its share.
	function fillRow(r, u, answered, total, nowSec) {
		const state = u.healthy ? 'up' : 'down';
		r.classList.toggle('is-down', !u.healthy);
		setText(r.querySelector('.addr'), u.address);
		setText(r.querySelector('.transport'), transport(u.transport));
		const st = r.querySelector('.state');
		st.className = 'state ' + state;
		setText(st, state);
		setText(r.cells[3], rtt(u.srtt_ms));
		setText(r.querySelector('.share'), percent(answered, total));
		r.querySelector('meter').value = total > 0 ? (100 * answered) / total : 0;
		setText(r.cells[5], count(u.errors));
		setText(r.querySelector('.msg'), u.last_error || 'none');
		const at = u.last_error_at ? Date.parse(u.last_error_at) / 1000 : 0;
		setText(r.querySelector('.when'), u.last_error && at ? ago(nowSec - at) : '');
	}

	// newRow builds an empty row with the structure page.go's template
	// writes, for renderUpstreams to fill in.
	function newRow(name) {
		const tr = document.createElement('tr');
		tr.dataset.name = name;
		const th = document.createElement('th');
		th.scope = 'row';
		const n = document.createElement('span');
		n.className = 'name';
		n.textContent = name;
		const addr = document.createElement('span');
		addr.className = 'addr';
		th.append(n, ' ', addr);
		tr.append(th);
		const cell = (label, cls) => {
			const td = tr.insertCell();
			td.dataset.label = label;
			if (cls) td.className = cls;
			return td;
		};
		const el = (tag, cls) => {
			const e = document.createElement(tag);
			if (cls) e.className = cls;
			return e;
		};
		cell('Transport', 'transport');
		cell('State').append(el('span', 'state'));
		cell('Smoothed RTT', 'num');
		const meter = el('meter');
		meter.setAttribute('aria-hidden', 'true');
		meter.min = 0;
		meter.max = 100;
		cell('Share of traffic', 'num').append(el('span', 'share'), ' ', meter);
		cell('Errors', 'num');
		const div = el('div');
		div.append(el('span', 'msg'), ' ', el('span', 'when'));
		cell('Last error', 'err').append(div);
		return tr;
	}

	function showError(text) {
		const el = byId('fetch-error');
		setText(el, text);
		el.hidden = text === '';
	}

	function refresh() {
		const ctl = new AbortController();
		const timer = setTimeout(() => ctl.abort(), timeoutMs);
		fetch('/api/status', { cache: 'no-store', signal: ctl.signal, headers: { Accept: 'application/json' } })
			.then((resp) => {
				if (!resp.ok) throw new Error('HTTP ' + resp.status);
				return resp.json();
			})
			.then((s) => {
				render(parse(s));
				showError('');
			})
			.catch((err) => {
				const why = err.name === 'AbortError' ? 'no answer in ' + timeoutMs / 1000 + ' s' : err.message;
				showError('Cannot reach dotproxy (' + why + ') at ' + clock(new Date()) + '; the figures below are from before.');
			})
			.finally(() => {
				clearTimeout(timer);
				setTimeout(refresh, pollMs);
			});
	}

	refresh();
})();
