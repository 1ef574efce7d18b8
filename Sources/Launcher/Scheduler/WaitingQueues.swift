/// A binary min-heap: the waiting queues keep units in submission order with it, so a
/// retry or an enabled job's tasks go back to their place in O(log n).
struct Heap<Element> {
    private var items: [Element] = []
    private let before: (Element, Element) -> Bool

    init(by before: @escaping (Element, Element) -> Bool) { self.before = before }

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    var first: Element? { items.first }

    mutating func push(_ item: Element) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard before(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && before(items[left], items[smallest]) { smallest = left }
            if right < items.count && before(items[right], items[smallest]) { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}

/// Units ready to start (dependencies met), in one queue per shape: priority, nodes and
/// slots per node, and for replicas the task (they exclude each other's nodes). Within a
/// queue every unit needs the same thing, so once its head does not fit, none of it does:
/// a scheduling pass tries one head per queue that fails instead of every waiting unit,
/// and its cost follows what starts, not what waits.
struct WaitingQueues {
    struct Shape: Hashable {
        var priority: Int
        var instances: Int
        var processesPerNode: Int
        /// The replicated task's key (job incarnation and task id), or nil.
        var replicaOf: String?
    }

    final class Queue {
        let shape: Shape
        var units = Heap<SchedulingCore.Unit> { $0.sequence < $1.sequence }
        init(shape: Shape) { self.shape = shape }
    }

    private(set) var queues: [Shape: Queue] = [:]

    mutating func push(_ unit: SchedulingCore.Unit) {
        let shape = unit.shape
        if let queue = queues[shape] { queue.units.push(unit); return }
        let queue = Queue(shape: shape)
        queue.units.push(unit)
        queues[shape] = queue
    }

    /// The non-empty queues, ready to be walked by priority then submission order.
    mutating func nonEmpty() -> [Queue] {
        queues = queues.filter { !$0.value.units.isEmpty }
        return Array(queues.values)
    }
}
