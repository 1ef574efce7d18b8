import Foundation

/// `transform` of every element at once, each on a thread of its own, results in order: for
/// work that waits on other hosts (ssh), so that N nodes cost one round trip, not N.
public func concurrentMap<T, R>(_ items: [T], _ transform: @escaping @Sendable (T) -> R) -> [R] {
    if items.count <= 1 { return items.map(transform) }
    let results = UnsafeMutableBufferPointer<R?>.allocate(capacity: items.count)
    results.initialize(repeating: nil)
    defer { results.deallocate() }
    let group = DispatchGroup()
    nonisolated(unsafe) let slots = results
    for (index, item) in items.enumerated() {
        group.enter()
        nonisolated(unsafe) let item = item
        let thread = Thread { slots[index] = transform(item); group.leave() }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
    return results.map { $0! }
}

/// `transform` of every element on at most `width` threads at once, results in order: for
/// many transfers to one server, where a thread each would only queue at its connections.
public func concurrentMap<T, R>(_ items: [T], width: Int, _ transform: @escaping @Sendable (T) -> R) -> [R] {
    if items.count <= 1 || width <= 1 { return items.map(transform) }
    let results = UnsafeMutableBufferPointer<R?>.allocate(capacity: items.count)
    results.initialize(repeating: nil)
    defer { results.deallocate() }
    nonisolated(unsafe) let slots = results
    nonisolated(unsafe) let items = items
    let lock = NSLock()
    nonisolated(unsafe) var next = 0
    let group = DispatchGroup()
    for _ in 0..<min(width, items.count) {
        group.enter()
        let thread = Thread {
            while true {
                lock.lock()
                let index = next
                next += 1
                lock.unlock()
                guard index < items.count else { break }
                slots[index] = transform(items[index])
            }
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
    return results.map { $0! }
}
