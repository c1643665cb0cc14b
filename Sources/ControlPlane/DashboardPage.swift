/// The dashboard: one page, no build step, updated by the server-sent
/// events of `GET /api/v1/events` (a `snapshot`, then `agent`, `logs` and
/// `reload` events). Every value is inserted as text, never as HTML.
enum DashboardPage {
    static let login = """
        <!doctype html><html><head><meta charset="utf-8"><title>Tether — sign in</title>
        <style>body{font:15px system-ui,sans-serif;background:#0f172a;color:#e2e8f0;display:grid;place-items:center;height:100vh;margin:0}
        form{background:#1e293b;padding:2rem;border-radius:12px}input{width:22rem;padding:.5rem;margin:.5rem 0;border-radius:6px;border:1px solid #475569;background:#0f172a;color:#e2e8f0}
        button{padding:.5rem 1rem;border-radius:6px;border:0;background:#38bdf8;color:#0f172a;font-weight:600}</style></head>
        <body><form method="post" action="/login"><h2>Tether</h2><p>Paste an API token, or open a link from <code>tether dashboard</code>.</p>
        <input name="token" type="password" autocomplete="off" placeholder="tthu_…"><br><button>Sign in</button></form></body></html>
        """

    static let html = #"""
        <!doctype html>
        <html><head><meta charset="utf-8"><title>Tether — workspaces</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        :root{--bg:#0f172a;--card:#1e293b;--line:#334155;--text:#e2e8f0;--dim:#94a3b8;--ok:#22c55e;--warn:#f59e0b;--bad:#ef4444;--info:#38bdf8}
        body{margin:0;font:14px system-ui,sans-serif;background:var(--bg);color:var(--text)}
        header{display:flex;align-items:center;gap:1rem;padding:.8rem 1.5rem;border-bottom:1px solid var(--line)}
        header h1{font-size:18px;margin:0}#conn{color:var(--dim);font-size:12px}
        main{padding:1rem 1.5rem;display:grid;gap:1rem}
        .ws{background:var(--card);border-radius:10px;padding:1rem}
        .ws h2{margin:0 0 .6rem;font-size:16px}
        .agent{border-top:1px solid var(--line);padding-top:.7rem;margin-top:.7rem;display:grid;grid-template-columns:minmax(260px,1fr) 2fr;gap:1rem}
        .pill{display:inline-block;padding:.1rem .55rem;border-radius:999px;font-size:12px;font-weight:600;background:#334155}
        .ready,.healthy,.connected{background:#14532d;color:#bbf7d0}.starting,.shutting_down,.initializing,.created{background:#1e3a8a;color:#bfdbfe}
        .start_error,.start_timeout,.shutdown_error,.shutdown_timeout,.unhealthy,.disconnected{background:#7f1d1d;color:#fecaca}.off,.disabled{background:#334155;color:#cbd5e1}
        dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem .8rem;margin:.5rem 0}dt{color:var(--dim)}dd{margin:0;font-family:ui-monospace,monospace;word-break:break-all}
        .err{color:var(--bad)}
        pre.logs{background:#020617;border-radius:8px;padding:.6rem;margin:0;max-height:320px;overflow:auto;font:12px/1.45 ui-monospace,monospace;white-space:pre-wrap}
        .src{color:var(--info)}.lvl-warn{color:var(--warn)}.lvl-error{color:var(--bad)}
        h3{font-size:13px;color:var(--dim);margin:.6rem 0 .2rem;font-weight:600}
        .empty{color:var(--dim)}
        </style></head>
        <body>
        <header><h1>Tether</h1><span id="conn">connecting…</span></header>
        <main id="root"><p class="empty">No workspaces yet. Create one with <code>tether create --spec FILE</code>.</p></main>
        <script>
        "use strict";
        const agents = new Map();   // id -> view
        const logs = new Map();     // id -> {session, lastSeq, lines: []}
        const MAX_LINES = 2000;
        let eventsSeen = 0;
        const root = document.getElementById("root");
        function el(tag, attrs, ...kids) {
          const e = document.createElement(tag);
          for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
          for (const k of kids) if (k != null) e.append(k instanceof Node ? k : String(k));
          return e;
        }
        function ago(ms) {
          if (!ms) return "never";
          const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
          return s < 60 ? s + "s ago" : s < 3600 ? Math.round(s / 60) + "m ago" : Math.round(s / 3600) + "h ago";
        }
        function addLogs(id, session, entries) {
          let l = logs.get(id);
          if (!l || l.session !== session) { l = {session, lastSeq: 0, lines: []}; logs.set(id, l); }
          for (const e of entries) {
            if (e.seq <= l.lastSeq) continue;
            l.lastSeq = e.seq; l.lines.push(e);
          }
          if (l.lines.length > MAX_LINES) l.lines.splice(0, l.lines.length - MAX_LINES);
        }
        function renderLogs(id, pre) {
          const l = logs.get(id), a = agents.get(id);
          pre.textContent = "";
          if (!l || !a || l.session !== a.session || l.lines.length === 0) { pre.append(el("span", {class: "empty"}, "no startup logs yet")); return; }
          for (const e of l.lines) {
            pre.append(el("span", {class: "src"}, "[" + e.source + "] "), el("span", {class: "lvl-" + e.level}, e.output), "\n");
          }
          pre.scrollTop = pre.scrollHeight;
        }
        function agentCard(a) {
          const state = el("span", {class: "pill " + a.lifecycle, "data-testid": "lifecycle"}, a.lifecycle);
          const conn = el("span", {class: "pill " + (a.connected ? "connected" : "disconnected"), "data-testid": "connected"}, a.connected ? "connected" : "disconnected");
          const info = el("dl", {},
            el("dt", {}, "lifecycle"), el("dd", {}, state),
            el("dt", {}, "connection"), el("dd", {}, conn),
            el("dt", {}, "last seen"), el("dd", {"data-testid": "last-seen", "data-ms": a.last_seen_at || 0}, a.connected ? "now" : ago(a.last_seen_at)),
            el("dt", {}, "version"), el("dd", {}, a.version || "—"),
            el("dt", {}, "host"), el("dd", {}, a.hostname || "—"));
          const meta = el("dl", {"data-testid": "metadata"});
          for (const m of a.metadata) {
            meta.append(el("dt", {}, a.metadata_names[m.key] || m.key),
              m.error ? el("dd", {class: "err", "data-key": m.key}, "error: " + m.error) : el("dd", {"data-key": m.key}, m.value));
          }
          const apps = el("dl", {"data-testid": "apps"});
          for (const app of a.apps) {
            const proxied = "/apps/" + encodeURIComponent(a.workspace) + "/" + encodeURIComponent(a.name) + "/" + encodeURIComponent(app.slug) + "/";
            apps.append(el("dt", {}, el("a", {href: proxied, target: "_blank", "data-slug": app.slug}, app.name)),
              el("dd", {}, el("span", {class: "pill " + app.health}, app.health), " ", app.url));
          }
          const ports = a.ports.length ? a.ports.map(p => p.port + "/" + p.network).join("  ") : "none";
          const left = el("div", {}, el("h3", {}, a.name), info,
            el("h3", {}, "metadata"), a.metadata.length ? meta : el("p", {class: "empty"}, "none yet"),
            el("h3", {}, "apps"), a.apps.length ? apps : el("p", {class: "empty"}, "none"),
            el("h3", {}, "listening ports"), el("p", {"data-testid": "ports"}, ports));
          const pre = el("pre", {class: "logs", "data-testid": "logs"});
          renderLogs(a.id, pre);
          return el("section", {class: "agent", id: "agent-" + a.id}, left, el("div", {}, el("h3", {}, "startup logs"), pre));
        }
        function render() {
          const byWs = new Map();
          for (const a of agents.values()) { if (!byWs.has(a.workspace)) byWs.set(a.workspace, []); byWs.get(a.workspace).push(a); }
          if (byWs.size === 0) return;
          root.textContent = "";
          for (const ws of [...byWs.keys()].sort()) {
            const card = el("article", {class: "ws", "data-workspace": ws}, el("h2", {}, ws));
            for (const a of byWs.get(ws).sort((x, y) => x.name.localeCompare(y.name))) card.append(agentCard(a));
            root.append(card);
          }
        }
        function replaceAgent(a) {
          agents.set(a.id, a);
          const old = document.getElementById("agent-" + a.id);
          if (old) old.replaceWith(agentCard(a)); else render();
        }
        function connect() {
          const es = new EventSource("/api/v1/events");
          const status = document.getElementById("conn");
          es.onopen = () => { status.textContent = "live"; };
          es.onerror = () => { status.textContent = "reconnecting…"; };
          es.addEventListener("snapshot", ev => {
            eventsSeen++;
            const s = JSON.parse(ev.data);
            agents.clear();
            for (const a of s.agents) agents.set(a.id, a);
            for (const [id, l] of Object.entries(s.logs)) addLogs(id, l.session, l.entries);
            render();
          });
          es.addEventListener("agent", ev => { eventsSeen++; replaceAgent(JSON.parse(ev.data)); });
          es.addEventListener("logs", ev => {
            eventsSeen++;
            const d = JSON.parse(ev.data);
            addLogs(d.agent_id, d.session, d.entries);
            const card = document.getElementById("agent-" + d.agent_id);
            if (card) renderLogs(d.agent_id, card.querySelector("pre.logs"));
          });
          es.addEventListener("reload", () => { es.close(); connect(); });
        }
        setInterval(() => {
          for (const dd of document.querySelectorAll('[data-testid="last-seen"]')) {
            const a = agents.get(dd.closest(".agent").id.slice(6));
            if (a && !a.connected) dd.textContent = ago(a.last_seen_at);
          }
        }, 5000);
        window.tetherEventsSeen = () => eventsSeen;
        connect();
        </script></body></html>
        """#
}
