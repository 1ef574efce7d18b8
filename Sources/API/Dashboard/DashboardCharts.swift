import Foundation
import Launcher

/// The dashboard's two charts as inline SVG, drawn on the server: an attempt timeline (one
/// row per attempt, one bar per phase, Gantt-like) and usage per day stacked by pool.
/// Colours come from the stylesheet's classes (`phase-launched`, `pool-0`).
enum DashboardCharts {
    static let width = 1000.0
    /// Attempts the timeline draws at most (the first to start).
    static let timelineRows = 100

    /// What an attempt does from reaching a phase until the next one.
    static func activity(after phase: AttemptPhase.Name) -> String {
        switch phase {
        case .queued: "waiting for nodes"
        case .allocated: "node checks"
        case .nodesReady: "staging files"
        case .staged: "coordination command"
        case .coordinated: "starting"
        case .launched: "running"
        case .adopted: "running (adopted after a restart)"
        case .ended: "uploading outputs"
        case .uploaded: "sweeping its nodes"
        case .swept: "done"
        }
    }

    static func timeline(_ tasks: [JobStore.TaskRecord], since submitted: Date, now: Date = Date()) -> String {
        var rows: [(label: String, attempt: Attempt)] = []
        for task in tasks { for attempt in task.attempts { rows.append(("\(task.displayId) #\(attempt.number)", attempt)) } }
        guard !rows.isEmpty else { return "<p class=\"empty\">No attempt has started yet.</p>" }
        let total = rows.count
        rows = Array(rows.sorted { $0.attempt.start < $1.attempt.start }.prefix(timelineRows))
        let start = min(submitted, rows.map { $0.attempt.phases?.first?.at ?? $0.attempt.start }.min()!)
        let end = rows.map { row in row.attempt.end.map { max($0, row.attempt.phases?.last?.at ?? $0) } ?? now }.max()!
        let span = max(end.timeIntervalSince(start), 0.001)
        let left = 170.0, plot = width - left - 10, rowHeight = 18.0, top = 24.0
        let height = top + Double(rows.count) * rowHeight + 8
        func x(_ date: Date) -> Double { left + plot * date.timeIntervalSince(start) / span }

        var svg = "<svg class=\"timeline\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"attempt timeline\">"
        let step = tickStep(span)
        var tick = 0.0
        while tick <= span + 1e-9 {
            let position = left + plot * tick / span
            svg += "<line class=\"grid\" x1=\"\(f(position))\" y1=\"\(f(top - 6))\" x2=\"\(f(position))\" y2=\"\(f(height - 4))\"/>"
            svg += "<text class=\"axis\" x=\"\(f(position))\" y=\"14\" text-anchor=\"middle\">\(tickLabel(tick))</text>"
            tick += step
        }
        for (index, row) in rows.enumerated() {
            let y = top + Double(index) * rowHeight
            svg += "<g class=\"attempt\" data-attempt=\"\(escape(row.label))\"><text class=\"label\" x=\"\(f(left - 6))\" y=\"\(f(y + 12))\" text-anchor=\"end\">\(escape(String(row.label.suffix(26))))</text>"
            let attempt = row.attempt
            var phases = attempt.phases ?? []
            if phases.isEmpty { phases = [AttemptPhase(name: .launched, at: attempt.start)] + (attempt.end.map { [AttemptPhase(name: .ended, at: $0)] } ?? []) }
            for (position, phase) in phases.enumerated() {
                let next: Date
                if position + 1 < phases.count { next = phases[position + 1].at } else if attempt.end == nil { next = now } else { continue }
                let from = x(phase.at), to = max(x(next), from + 1)
                let what = activity(after: phase.name)
                svg += "<rect class=\"phase-\(phase.name.rawValue)\" x=\"\(f(from))\" y=\"\(f(y + 2))\" width=\"\(f(to - from))\" height=\"\(f(rowHeight - 5))\">"
                    + "<title>\(escape(row.label)) on \(escape(Hostlist.compress(attempt.nodes))): \(what), \(String(format: "%.2f", next.timeIntervalSince(phase.at))) s</title></rect>"
            }
            svg += "</g>"
        }
        svg += "</svg>"
        var legend = "<ul class=\"legend\">"
        for phase in AttemptPhase.Name.allCases where phase != .swept {
            legend += "<li><svg viewBox=\"0 0 10 10\" aria-hidden=\"true\"><rect class=\"phase-\(phase.rawValue)\" width=\"10\" height=\"10\"/></svg>\(activity(after: phase))</li>"
        }
        legend += "</ul>"
        let note = total > rows.count ? "<p class=\"empty\">The first \(rows.count) of \(total) attempts.</p>" : ""
        return svg + legend + note
    }

    /// Node-hours per day, one bar per day stacked by pool.
    static func usage(days: [String], pools: [(name: String, nodeHours: [Double])]) -> String {
        let height = 180.0, left = 56.0, bottom = 24.0, top = 10.0
        let plot = width - left - 10, slot = plot / Double(max(days.count, 1))
        let totals = days.indices.map { day in pools.reduce(0) { $0 + $1.nodeHours[day] } }
        let most = max(totals.max() ?? 0, 1e-9)
        func y(_ hours: Double) -> Double { (height - bottom - top) * hours / most }
        var svg = "<svg class=\"usage\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"node-hours per day\">"
        svg += "<line class=\"grid\" x1=\"\(f(left))\" y1=\"\(f(height - bottom))\" x2=\"\(f(width - 10))\" y2=\"\(f(height - bottom))\"/>"
        svg += "<text class=\"axis\" x=\"\(f(left - 6))\" y=\"\(f(top + 8))\" text-anchor=\"end\">\(String(format: "%.3g", totals.max() ?? 0))</text>"
        svg += "<text class=\"axis\" x=\"\(f(left - 6))\" y=\"\(f(height - bottom))\" text-anchor=\"end\">0</text>"
        for (index, day) in days.enumerated() {
            let x = left + Double(index) * slot + slot * 0.15
            var base = height - bottom
            for (number, pool) in pools.enumerated() where pool.nodeHours[index] > 0 {
                let bar = max(y(pool.nodeHours[index]), 1)
                base -= bar
                svg += "<rect class=\"pool-\(number % 8)\" data-day=\"\(day)\" data-pool=\"\(escape(pool.name))\" x=\"\(f(x))\" y=\"\(f(base))\" width=\"\(f(slot * 0.7))\" height=\"\(f(bar))\">"
                    + "<title>\(day), \(escape(pool.name)): \(String(format: "%.4f", pool.nodeHours[index])) node-hours</title></rect>"
            }
            svg += "<text class=\"axis\" x=\"\(f(x + slot * 0.35))\" y=\"\(f(height - 8))\" text-anchor=\"middle\">\(day.suffix(5))</text>"
        }
        svg += "</svg><ul class=\"legend\">"
        for (number, pool) in pools.enumerated() {
            svg += "<li><svg viewBox=\"0 0 10 10\" aria-hidden=\"true\"><rect class=\"pool-\(number % 8)\" width=\"10\" height=\"10\"/></svg>\(escape(pool.name))</li>"
        }
        return svg + "</ul>"
    }

    /// A round step for about six ticks across `span` seconds.
    static func tickStep(_ span: Double) -> Double {
        let steps: [Double] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 43_200, 86_400]
        return steps.first { span / $0 <= 8 } ?? (span / 8).rounded(.up)
    }

    static func tickLabel(_ seconds: Double) -> String {
        switch seconds {
        case ..<1: String(format: "%.2g s", seconds)
        case ..<120: String(format: "%g s", seconds)
        case ..<7200: String(format: "%g min", seconds / 60)
        default: String(format: "%g h", seconds / 3600)
        }
    }

    private static func f(_ value: Double) -> String { String(format: "%.1f", value) }
}
