/// A binary min-heap of values by key: the waiting queues keep units in submission order
/// with it, so a retry or an enabled job's tasks go back to their place in O(log n).
/// Comparisons read only the keys (no reference counting of the values).
struct Heap<Key: Comparable, Value> {
    private var keys: [Key] = []
    private var values: [Value] = []

    var isEmpty: Bool { keys.isEmpty }
    var count: Int { keys.count }
    var first: Value? { values.first }
    var firstKey: Key? { keys.first }

    mutating func push(_ value: Value, key: Key) {
        keys.append(key)
        values.append(value)
        var child = keys.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard keys[child] < keys[parent] else { break }
            swap(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> Value? {
        guard !keys.isEmpty else { return nil }
        swap(0, keys.count - 1)
        keys.removeLast()
        let top = values.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < keys.count && keys[left] < keys[smallest] { smallest = left }
            if right < keys.count && keys[right] < keys[smallest] { smallest = right }
            if smallest == parent { break }
            swap(parent, smallest)
            parent = smallest
        }
        return top
    }

    private mutating func swap(_ a: Int, _ b: Int) {
        keys.swapAt(a, b)
        values.swapAt(a, b)
    }
}

/// Units in submission order. Most arrive in that order (a job's tasks as given) and are
/// appended; older ones (a retry, a dependent that became ready, a re-enabled job's tasks)
/// go into a heap; the head is the older of the two heads.
struct UnitQueue {
    private var inOrder: [SchedulingCore.Unit] = []
    private var start = 0
    private var late = Heap<Int, SchedulingCore.Unit>()

    var isEmpty: Bool { start == inOrder.count && late.isEmpty }

    private var takesInOrder: Bool {
        guard start < inOrder.count else { return false }
        guard let lateKey = late.firstKey else { return true }
        return inOrder[start].sequence < lateKey
    }

    var first: SchedulingCore.Unit? { takesInOrder ? inOrder[start] : late.first }
    var firstKey: Int? { takesInOrder ? inOrder[start].sequence : late.firstKey }

    mutating func push(_ unit: SchedulingCore.Unit) {
        if let last = inOrder.last, start < inOrder.count, unit.sequence < last.sequence {
            late.push(unit, key: unit.sequence)
        } else {
            inOrder.append(unit)
        }
    }

    mutating func pop() {
        if takesInOrder {
            start += 1
            if start == inOrder.count { inOrder.removeAll(keepingCapacity: true); start = 0 }
            else if start >= 1024 && start * 2 >= inOrder.count { inOrder.removeFirst(start); start = 0 }
        } else {
            late.pop()
        }
    }
}

/// Units ready to start (dependencies met), in one queue per shape: priority, nodes and
/// slots per node. Within a
/// queue every unit needs the same thing, so once its head does not fit, none of it does:
/// a scheduling pass tries one head per queue that fails instead of every waiting unit,
/// and its cost follows what starts, not what waits.
struct WaitingQueues {
    struct Shape: Hashable {
        var priority: Int
        var instances: Int
        /// Slots on each node (a slot per rank, or per core of a hybrid rank).
        var processesPerNode: Int
        /// Whole nodes only, every slot of each taken.
        var exclusive = false
        /// GPUs and memory on each node.
        var extras = Allocator.Extras.none
    }

    final class Queue {
        let shape: Shape
        var units = UnitQueue()
        init(shape: Shape) { self.shape = shape }

        /// The oldest unit still waiting here; entries of units that started, ended or were
        /// set aside since they were queued are dropped on the way (deleted lazily).
        func headWaiting() -> SchedulingCore.Unit? {
            while let unit = units.first {
                if unit.queued && unit.state == .waiting { return unit }
                units.pop()
            }
            return nil
        }
    }

    private var byShape: [Shape: Queue] = [:]
    /// Every queue made so far (shapes are few: priorities times group sizes).
    private(set) var all: [Queue] = []

    mutating func push(_ unit: SchedulingCore.Unit) {
        let shape = unit.shape
        if let queue = byShape[shape] { queue.units.push(unit); return }
        let queue = Queue(shape: shape)
        queue.units.push(unit)
        byShape[shape] = queue
        all.append(queue)
    }
}
