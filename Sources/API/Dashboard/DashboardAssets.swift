/// The dashboard's stylesheet and script, in the binary: nothing is fetched from elsewhere.
enum DashboardAssets {
    static let stylesheet = #"""
    :root { --ink: #1d2330; --muted: #6b7385; --line: #dde1e8; --panel: #f6f7f9; --accent: #2f6fde;
            --ok: #2e9e5b; --bad: #d64545; --warn: #e0a030; --idle: #cfd6e2; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #fff; }
    header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: var(--ink); color: #fff; }
    header .brand { color: #fff; font-weight: 700; font-size: 17px; text-decoration: none; }
    header .where { color: #b9c1d0; flex: 1; }
    header button { background: transparent; color: #fff; border: 1px solid #7a8499; border-radius: 4px; padding: 3px 10px; cursor: pointer; }
    main { padding: 12px 20px 40px; max-width: 1300px; }
    h2 { font-size: 18px; margin: 22px 0 8px; } h3 { font-size: 15px; margin: 16px 0 6px; }
    small { color: var(--muted); font-weight: 400; }
    a { color: var(--accent); }
    table { border-collapse: collapse; width: 100%; margin-bottom: 8px; }
    th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
    th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
    td.why { color: var(--muted); max-width: 420px; } td.group { font-family: ui-monospace, monospace; font-size: 12px; }
    .empty { color: var(--muted); }
    .notice { background: #fff6df; border: 1px solid #f0d48a; padding: 6px 10px; border-radius: 4px; }
    .failed { color: var(--bad); }
    .state { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; background: var(--panel); border: 1px solid var(--line); }
    .state.running, .state.active { border-color: var(--accent); color: var(--accent); }
    .state.completed { border-color: var(--ok); color: var(--ok); }
    .state.terminating, .state.disabled { border-color: var(--warn); color: #9a6a00; }
    .pool { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px 12px; margin-bottom: 12px; }
    .pool h3 { margin-top: 4px; } .slots { margin: 0 0 8px; color: var(--muted); } .slots b { color: var(--ink); }
    .nodes { display: grid; grid-template-columns: repeat(auto-fill, minmax(92px, 1fr)); gap: 6px; }
    .node { border-radius: 5px; padding: 4px 6px; background: #fff; border: 1px solid var(--line); border-left: 5px solid var(--idle);
            font-size: 12px; display: flex; flex-wrap: wrap; justify-content: space-between; }
    .node .name { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 60px; }
    .node .use { color: var(--muted); }
    .node.busy { border-left-color: var(--accent); } .node.full { border-left-color: #1b4aa3; background: #eef3fd; }
    .node.starting, .node.leaving { border-left-color: var(--warn); }
    .node.offline { border-left-color: #8a8f99; background: #f0f0f0; } .node.unusable { border-left-color: var(--bad); background: #fdeeee; }
    .slotbar { width: 100%; height: 6px; margin-top: 3px; } .slotbar .on { fill: var(--accent); } .slotbar .off { fill: #e4e8ef; }
    meter { width: 70px; height: 10px; vertical-align: middle; }
    dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 6px 0 10px; } dt { color: var(--muted); } dd { margin: 0; }
    form.cancel button { background: var(--bad); color: #fff; border: 0; border-radius: 4px; padding: 5px 12px; cursor: pointer; }
    svg.timeline, svg.usage { width: 100%; height: auto; background: #fff; border: 1px solid var(--line); border-radius: 4px; }
    svg text { font-size: 11px; fill: var(--muted); } svg .label { fill: var(--ink); }
    svg .grid { stroke: var(--line); stroke-width: 1; }
    .phase-queued { fill: #c9ced8; } .phase-allocated { fill: #e0a030; } .phase-nodesReady { fill: #b57edc; } .phase-staged { fill: #5bb6c9; }
    .phase-coordinated { fill: #8fbf5a; } .phase-launched { fill: #2f6fde; } .phase-adopted { fill: #1b4aa3; } .phase-ended { fill: #e27d60; }
    .phase-uploaded { fill: #9aa3b5; } .phase-swept { fill: #dde1e8; }
    .pool-0 { fill: #2f6fde; } .pool-1 { fill: #2e9e5b; } .pool-2 { fill: #e0a030; } .pool-3 { fill: #b57edc; }
    .pool-4 { fill: #d64545; } .pool-5 { fill: #5bb6c9; } .pool-6 { fill: #8a8f99; } .pool-7 { fill: #8fbf5a; }
    ul.legend { list-style: none; padding: 0; margin: 4px 0 10px; display: flex; flex-wrap: wrap; gap: 4px 14px; color: var(--muted); font-size: 12px; }
    ul.legend svg { width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
    pre#log { background: #11151c; color: #d8dee9; padding: 10px; border-radius: 4px; max-height: 360px; overflow: auto; font-size: 12px; min-height: 3em; white-space: pre-wrap; }
    .events ol { list-style: none; padding: 0; font-size: 13px; } .events time { color: var(--muted); font-family: ui-monospace, monospace; }
    .login { max-width: 460px; } .login label { display: block; margin: 10px 0; } .login input { width: 100%; padding: 6px; font: inherit; }
    .login button { padding: 6px 14px; }
    """#

    /// Follows the server's events to redraw the page's live part, and a task's output as it
    /// grows; both with the session cookie (the API takes it for reads).
    static let script = #"""
    "use strict";
    (function () {
      const live = document.getElementById("live");
      const log = document.getElementById("log");

      // A task's stdout from where it was last read; the server says how far the file goes.
      if (log) {
        let offset = 0;
        const url = "/v1/jobs/" + encodeURIComponent(log.dataset.job) + "/tasks/" + encodeURIComponent(log.dataset.task) + "/logs";
        const poll = async function () {
          try {
            const answer = await fetch(url + "?offset=" + offset, { credentials: "same-origin" });
            if (answer.ok) {
              const text = await answer.text();
              offset = Number(answer.headers.get("X-Cohort-Log-Size")) || offset;
              if (text.length > 0) {
                const end = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
                log.textContent = (log.textContent + text).slice(-65536);
                if (end) { log.scrollTop = log.scrollHeight; }
              }
              log.dataset.read = String(offset);
            } else {
              log.dataset.read = "none";
            }
          } catch (error) {
            log.dataset.read = "unreachable";
          }
          if (log.dataset.final !== "true") { setTimeout(poll, 1000); }
        };
        poll();
      }

      // Redraw the live part (not the log) a moment after anything happens.
      if (live && window.EventSource) {
        let query = "?after=" + encodeURIComponent(live.dataset.events || "0");
        if (live.dataset.job) { query += "&job=" + encodeURIComponent(live.dataset.job); }
        const source = new EventSource("/v1/events" + query);
        let pending = null;
        const redraw = async function () {
          pending = null;
          try {
            const answer = await fetch(location.href, { credentials: "same-origin" });
            if (!answer.ok) { return; }
            const page = new DOMParser().parseFromString(await answer.text(), "text/html");
            const fresh = page.getElementById("live");
            if (!fresh) { return; }
            const kept = log ? log.parentElement : null;
            const freshLog = fresh.querySelector("#log");
            if (kept && freshLog) {
              log.dataset.final = freshLog.dataset.final;
              freshLog.parentElement.replaceWith(kept);
            }
            live.replaceChildren(...fresh.childNodes);
            live.dataset.redrawn = String(Number(live.dataset.redrawn || "0") + 1);
          } catch (error) { /* the next event tries again */ }
        };
        const changed = function () { if (!pending) { pending = setTimeout(redraw, 1000); } };
        ["job.submitted", "job.started", "job.resumed", "job.cancelling", "job.disabled", "job.enabled", "job.completed",
         "attempt.started", "attempt.ended", "node.changed", "missed"].forEach(function (kind) { source.addEventListener(kind, changed); });
        window.addEventListener("pagehide", function () { source.close(); });
      }
    })();
    """#
}
