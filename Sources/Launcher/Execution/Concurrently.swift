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
