// Allocation speed: 1,000-node groups from a simulated 10,000-node pool that is already
// fragmented (nodes of 4-16 slots, about 60% of them partly busy), against a reference
// allocator measured in the same run that scans every node for each group.
import Foundation
import Launcher

struct ScanAllocator {
    var free: [Int]
    mutating func allocateGroup(instances: Int, processesPerNode: Int) -> [Int]? {
        var chosen: [Int] = []
        for node in free.indices where free[node] >= processesPerNode {
            chosen.append(node)
            if chosen.count == instances { break }
        }
        guard chosen.count == instances else { return nil }
        for node in chosen { free[node] -= processesPerNode }
        return chosen
    }
    mutating func release(_ group: [Int], _ processesPerNode: Int) { for node in group { free[node] += processesPerNode } }
}

let nodes = 10_000, groupSize = 1_000, rounds = 2_000
var random = SeededRandom(seed: 7)
let slots = (0..<nodes).map { _ in 4 + random.next(13) }
var allocator = Allocator(slots: slots, policy: .pack)
var scan = ScanAllocator(free: slots)
// Fragment: single slots and small groups scattered over the pool, held throughout.
for _ in 0..<6_000 {
    _ = allocator.allocateSlot()
    _ = allocator.allocateGroup(instances: 1 + random.next(4), processesPerNode: 1 + random.next(3))
}
scan.free = allocator.free

@MainActor func measure(_ body: () -> Void) -> [Double] {
    var times: [Double] = []
    for _ in 0..<rounds {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3)
    }
    return times.sorted()
}

func percentile(_ sorted: [Double], _ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }

var sink = 0
@MainActor func run(_ title: String, ppn: @escaping () -> Int) {
    let cohort = measure {
        let p = ppn()
        let group = allocator.allocateGroup(instances: groupSize, processesPerNode: p)!
        sink &+= group[0]
        allocator.release(group: group, processesPerNode: p)
    }
    let reference = measure {
        let p = ppn()
        let group = scan.allocateGroup(instances: groupSize, processesPerNode: p)!
        sink &+= group[0]
        scan.release(group, p)
    }
    print("# \(title): \(groupSize)-node groups from a \(nodes)-node pool (\(allocator.freeSlots) of \(slots.reduce(0, +)) slots free), allocate + release, \(rounds) rounds")
    print("allocator".padding(toLength: 26, withPad: " ", startingAt: 0) + "p50 (us)   p90 (us)   p99 (us)")
    for (name, times) in [("cohort (buckets)", cohort), ("reference (scan all)", reference)] {
        print(name.padding(toLength: 26, withPad: " ", startingAt: 0)
              + String(format: "%8.1f   %8.1f   %8.1f", percentile(times, 0.5), percentile(times, 0.9), percentile(times, 0.99)))
    }
}

run("scattered fragmentation", ppn: { 1 + random.next(4) })

// Busy front: the first 7,000 nodes keep at most one free slot (where a packing scheduler
// puts small work), so a scan walks past them for every group of 2+ slots per node.
for node in 0..<7_000 {
    if allocator.free[node] > 1 { _ = allocator.allocate(slots: allocator.free[node] - 1, on: node) }
}
scan.free = allocator.free
print("nodes with 2+ free slots after filling the front:", allocator.free.filter { $0 >= 2 }.count)
run("busy front", ppn: { 2 })
if sink == 42 { print("") }
