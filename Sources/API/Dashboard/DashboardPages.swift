import Foundation
import Launcher

/// The dashboard's pages as HTML, from what the store and the service say. Elements carry
/// `data-` attributes (a node's state, a job's state) that the page's script and the
/// browser tests read.
enum DashboardPages {
    /// Days of usage the overview charts, today included.
    static let usageDays = 14
    /// Rows a page shows at most (a job of 100,000 tasks is summed up, not listed).
    static let taskRows = 500
    static let finishedJobRows = 50
    static let jobRows = 100

    static func layout(title: String, csrf: String?, body: String, live: String = "") -> String {
        var logout = ""
        if let csrf {
            logout = """
            <form method="post" action="/logout" class="logout"><input type="hidden" name="csrf" value="\(escape(csrf))"><button type="submit">Log out</button></form>
            """
        }
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title)) · Cohort</title><link rel="icon" href="data:,">
        <link rel="stylesheet" href="/assets/dashboard.css"><script src="/assets/dashboard.js" defer></script></head>
        <body><header><a href="/" class="brand">Cohort</a><span class="where">\(escape(title))</span>\(logout)</header>
        <main id="live"\(live)>\(body)</main></body></html>
        """
    }

    // MARK: - Overview

    static func overview(pools: [JobRunner.Occupancy], jobs: [JobStore.JobSummary], usage: [JobStore.UsageRow], newestEvent: Int, csrf: String) -> String {
        var body = "<section class=\"pools\"><h2>Pools</h2>"
        if pools.isEmpty { body += "<p class=\"empty\">No pools yet: <code>cohort pool add</code>.</p>" }
        for occupancy in pools { body += pool(occupancy) }
        body += "</section><section class=\"jobs\"><h2>Jobs</h2>"
        let running = jobs.filter { $0.state == .running || $0.state == .terminating || ($0.state == .disabled && $0.succeeded + $0.failed > 0) }
        let runningIds = Set(running.map(\.id))
        let queued = jobs.filter { ($0.state == .active || $0.state == .disabled) && !runningIds.contains($0.id) }
        let finished = jobs.filter { $0.state == .completed }.sorted { ($0.finished ?? $0.submitted) > ($1.finished ?? $1.submitted) }
        // A store of thousands of queued jobs (held back, say) must not make a page of megabytes.
        body += jobTable("Running", Array(running.prefix(jobRows)), id: "running", note: running.count > jobRows ? "the first \(jobRows) of \(running.count)" : nil)
        body += jobTable("Queued", Array(queued.prefix(jobRows)), id: "queued", note: queued.count > jobRows ? "the first \(jobRows) of \(queued.count)" : nil)
        body += jobTable("Finished", Array(finished.prefix(finishedJobRows)), id: "finished",
                         note: finished.count > finishedJobRows ? "the newest \(finishedJobRows) of \(finished.count)" : nil)
        body += "</section>"
        body += usageSection(usage)
        return layout(title: "Overview", csrf: csrf, body: body, live: " data-events=\"\(newestEvent)\"")
    }

    static func pool(_ occupancy: JobRunner.Occupancy) -> String {
        let pool = occupancy.pool
        var text = """
        <article class="pool" data-pool="\(escape(pool.name))"><h3>\(escape(pool.name)) <small>\(escape(pool.kind.rawValue)), \(pool.nodes.count) node\(pool.nodes.count == 1 ? "" : "s")</small></h3>
        <p class="slots"><b>\(occupancy.usedSlots)</b> of \(occupancy.totalSlots) slots in use · \(occupancy.running) running · \(occupancy.waiting) waiting\(pool.pricePerNodeHour.map { String(format: " · %.2f per node-hour", $0) } ?? "")</p>
        <div class="nodes">
        """
        for (index, node) in pool.nodes.enumerated() {
            let used = index < occupancy.usedSlotsByNode.count ? occupancy.usedSlotsByNode[index] : 0
            let shown = nodeState(node, used: used)
            let reason = node.stateReason.map { ": \($0)" } ?? ""
            text += """
            <div class="node \(shown)" data-node="\(escape(node.id))" data-state="\(shown)" data-used="\(used)" data-slots="\(node.slots)" \
            title="\(escape("\(node.id) (\(node.address)): \(shown)\(reason), \(used) of \(node.slots) slots in use"))">\
            <span class="name">\(escape(node.id))</span><span class="use">\(used)/\(node.slots)</span>\(slotBar(used: used, of: node.slots))</div>
            """
        }
        return text + "</div></article>"
    }

    /// What a node's tile says: `busy` while work runs there and it may take more, else its state.
    static func nodeState(_ node: Node, used: Int) -> String {
        node.state.acceptsWork ? (used > 0 ? (used >= node.slots ? "full" : "busy") : "idle") : node.state.rawValue
    }

    /// Slots in use as a row of small squares (an SVG: no inline styles under the page's CSP).
    static func slotBar(used: Int, of slots: Int) -> String {
        let shown = min(slots, 32)
        guard shown > 0 else { return "" }
        var text = "<svg class=\"slotbar\" viewBox=\"0 0 \(shown * 6) 5\" aria-hidden=\"true\">"
        for slot in 0..<shown { text += "<rect x=\"\(slot * 6)\" y=\"0\" width=\"5\" height=\"5\" class=\"\(slot < used * shown / slots ? "on" : "off")\"/>" }
        return text + "</svg>"
    }

    static func jobTable(_ title: String, _ jobs: [JobStore.JobSummary], id: String, note: String? = nil) -> String {
        var text = "<h3>\(title) <small>\(note ?? String(jobs.count))</small></h3>"
        guard !jobs.isEmpty else { return text + "<p class=\"empty\" data-jobs=\"\(id)\">None.</p>" }
        text += "<table class=\"jobs\" data-jobs=\"\(id)\"><thead><tr><th>Job</th><th>Pool</th><th>State</th><th>Tasks</th><th>Submitted</th><th>Time</th></tr></thead><tbody>"
        for job in jobs {
            let done = job.succeeded + job.failed
            text += """
            <tr data-job="\(escape(job.id))" data-state="\(job.state.rawValue)"><td><a href="/jobs/\(escape(job.id))">\(escape(job.id))</a></td>\
            <td>\(escape(job.pool))</td><td><span class="state \(job.state.rawValue)">\(job.state.rawValue)</span></td>\
            <td><meter min="0" max="\(max(job.tasks, 1))" value="\(done)"></meter> \(job.succeeded) ok\(job.failed > 0 ? ", <b class=\"failed\">\(job.failed) failed</b>" : "") of \(job.tasks)</td>\
            <td>\(time(job.submitted))</td><td>\(duration((job.finished ?? Date()).timeIntervalSince(job.submitted)))</td></tr>
            """
        }
        return text + "</tbody></table>"
    }

    static func usageSection(_ rows: [JobStore.UsageRow]) -> String {
        var text = "<section class=\"usage\"><h2>Usage <small>node-hours per UTC day, last \(usageDays) days</small></h2>"
        let today = startOfUTCDay(Date())
        let days = (0..<usageDays).reversed().map { JobStore.utcDay(today.addingTimeInterval(-Double($0) * 86_400)) }
        var byPool: [String: [String: (nodeHours: Double, coreHours: Double, cost: Double?)]] = [:]
        for row in rows {
            let parts = row.key.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            byPool[parts[1], default: [:]][parts[0]] = (row.nodeSeconds / 3600, row.coreSeconds / 3600, row.cost)
        }
        let pools = byPool.keys.sorted()
        text += DashboardCharts.usage(days: days, pools: pools.map { pool in (pool, days.map { byPool[pool]?[$0]?.nodeHours ?? 0 }) })
        guard !pools.isEmpty else { return text + "<p class=\"empty\">Nothing ran in these days.</p></section>" }
        text += "<table class=\"usage\"><thead><tr><th>Pool</th><th>Node-hours</th><th>Core-hours</th><th>Cost</th></tr></thead><tbody>"
        for pool in pools {
            let values = byPool[pool]!.values
            let cost = values.contains { $0.cost == nil } ? nil : values.reduce(0) { $0 + ($1.cost ?? 0) }
            text += "<tr data-pool=\"\(escape(pool))\"><td>\(escape(pool))</td><td>\(String(format: "%.3f", values.reduce(0) { $0 + $1.nodeHours }))</td>"
                + "<td>\(String(format: "%.3f", values.reduce(0) { $0 + $1.coreHours }))</td><td>\(cost.map { String(format: "%.2f", $0) } ?? "no price set")</td></tr>"
        }
        return text + "</tbody></table></section>"
    }

    // MARK: - A job

    static func job(_ job: JobStore.JobSummary, tasks: [JobStore.TaskRecord], events: [JobStore.Event], followed: String?,
                    newestEvent: Int, notice: String?, csrf: String) -> String {
        let id = escape(job.id)
        var body = "<section class=\"job\" data-job=\"\(id)\" data-state=\"\(job.state.rawValue)\">"
        if let notice { body += "<p class=\"notice\">\(escape(String(notice.prefix(300))))</p>" }
        body += """
        <h2>Job \(id) <span class="state \(job.state.rawValue)">\(job.state.rawValue)</span></h2>
        <dl><dt>Pool</dt><dd>\(escape(job.pool))</dd><dt>Submitted</dt><dd>\(time(job.submitted))</dd>\
        <dt>Finished</dt><dd>\(job.finished.map(time) ?? "—")</dd><dt>Tasks</dt><dd>\(job.tasks): \(job.succeeded) succeeded, \(job.failed) failed</dd></dl>
        """
        if job.state != .completed {
            body += """
            <form method="post" action="/jobs/\(id)/cancel" class="cancel"><input type="hidden" name="csrf" value="\(escape(csrf))"><button type="submit">Cancel job</button></form>
            """
        }
        body += "</section>"
        body += taskTable(job.id, tasks)
        body += "<section class=\"timeline\"><h3>Timeline <small>each attempt's phases</small></h3>\(DashboardCharts.timeline(tasks, since: job.submitted))</section>"
        if let followed {
            let task = tasks.first { $0.displayId == followed }
            body += """
            <section class="output"><h3>Output of \(escape(followed)) <small>stdout, as it grows</small></h3>
            <pre id="log" data-job="\(id)" data-task="\(escape(followed))" data-final="\(task.map { $0.state == .completed } ?? true)"></pre></section>
            """
        }
        body += "<section class=\"events\"><h3>Events</h3><ol>"
        for event in events.suffix(100) { body += "<li>\(time(event.time)) <b>\(escape(event.kind.rawValue))</b> \(escape(event.message))</li>" }
        body += "</ol></section>"
        return layout(title: "Job \(job.id)", csrf: csrf, body: body, live: " data-events=\"\(newestEvent)\" data-job=\"\(id)\"")
    }

    static func taskTable(_ jobId: String, _ tasks: [JobStore.TaskRecord]) -> String {
        var text = "<section class=\"tasks\"><h3>Tasks <small>\(tasks.count)\(tasks.count > taskRows ? ", the first \(taskRows) shown" : "")</small></h3>"
        text += "<table class=\"tasks\"><thead><tr><th>Task</th><th>State</th><th>Result</th><th>Attempts</th><th>Node group</th><th>Exit</th><th>Time</th><th>Why</th></tr></thead><tbody>"
        for task in tasks.prefix(taskRows) {
            let last = task.attempts.last
            let why = task.failure.map { "\($0.category.rawValue): \($0.message)" } ?? task.waiting ?? ""
            let link = "/jobs/\(jobId)?task=\(task.displayId.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
            text += """
            <tr data-task="\(escape(task.displayId))" data-state="\(escape(task.state.rawValue))"><td><a href="\(escape(link))">\(escape(task.displayId))</a></td>\
            <td><span class="state \(escape(task.state.rawValue))">\(escape(task.state.rawValue))</span></td><td>\(escape(task.result?.rawValue ?? ""))</td><td>\(task.attempts.count)</td>\
            <td class="group">\(escape(last?.nodes.joined(separator: ", ") ?? ""))</td><td>\(last?.exitCode.map { String($0) } ?? "")</td>\
            <td>\(last.map { duration($0.seconds) } ?? "")</td><td class="why">\(escape(String(why.prefix(300))))</td></tr>
            """
        }
        return text + "</tbody></table></section>"
    }

    // MARK: - Login

    static func login(next: String, problem: String?) -> String {
        let body = """
        <section class="login"><h2>Log in</h2>
        \(problem.map { "<p class=\"notice\">\(escape($0))</p>" } ?? "")
        <p>Paste the server's API token (<code>cat ~/.cohort/api-token</code>), or open the link <code>cohort dashboard</code> prints.</p>
        <form method="post" action="/login"><input type="hidden" name="next" value="\(escape(next))">
        <label>Token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
        <button type="submit">Log in</button></form></section>
        """
        return layout(title: "Log in", csrf: nil, body: body)
    }

    // MARK: - Formatting

    static func time(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970), parts = tm()
        gmtime_r(&seconds, &parts)
        let text = String(format: "%04d-%02d-%02d %02d:%02d:%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec)
        return "<time datetime=\"\(Int(date.timeIntervalSince1970))\">\(text)</time>"
    }

    static func duration(_ seconds: Double) -> String {
        switch seconds {
        case ..<60: String(format: "%.1f s", max(0, seconds))
        case ..<3600: String(format: "%d min %02d s", Int(seconds) / 60, Int(seconds) % 60)
        default: String(format: "%d h %02d min", Int(seconds) / 3600, Int(seconds) % 3600 / 60)
        }
    }

    static func startOfUTCDay(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400)
    }

}
