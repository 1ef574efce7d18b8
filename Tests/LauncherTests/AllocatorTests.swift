import XCTest
@testable import Launcher

final class AllocatorTests: XCTestCase {
    func testGroupsTakeDistinctNodesAndReleaseGivesBack() {
        var allocator = Allocator(slots: [4, 4, 4, 4])
        let group = allocator.allocateGroup(instances: 3, processesPerNode: 2)!
        XCTAssertEqual(Set(group).count, 3)
        XCTAssertEqual(allocator.freeSlots, 10)
        XCTAssertNil(allocator.allocateGroup(instances: 4, processesPerNode: 3), "only one node has 3 free slots")
        XCTAssertEqual(allocator.freeSlots, 10, "a failed allocation takes nothing")
        allocator.release(group: group, processesPerNode: 2)
        XCTAssertEqual(allocator.freeSlots, 16)
        XCTAssertNotNil(allocator.allocateGroup(instances: 4, processesPerNode: 4))
        XCTAssertEqual(allocator.freeSlots, 0)
        XCTAssertNil(allocator.allocateSlot())
    }

    func testReplicasGetDisjointGroups() {
        var allocator = Allocator(slots: Array(repeating: 8, count: 12))
        let groups = allocator.allocateGroups(count: 3, instances: 4, processesPerNode: 1)!
        XCTAssertEqual(groups.count, 3)
        let taken = Set(groups.flatMap { $0 })
        XCTAssertEqual(taken.count, 12, "no node in two replicas, though each has slots to spare")
        XCTAssertTrue(groups.allSatisfy { Set($0).count == 4 }, "each replica has 4 distinct nodes")
        XCTAssertEqual(allocator.freeSlots, 12 * 8 - 12, "one slot taken on each node")
        XCTAssertNil(allocator.allocateGroup(instances: 1, processesPerNode: 1, excluding: taken), "every node is in a replica")
        XCTAssertNotNil(allocator.allocateGroup(instances: 4, processesPerNode: 1), "nodes still have slots for other work")
    }

    func testReplicaGroupsAreAllOrNothing() {
        var allocator = Allocator(slots: Array(repeating: 8, count: 12))
        XCTAssertNil(allocator.allocateGroups(count: 4, instances: 4, processesPerNode: 1), "4 disjoint groups of 4 need 16 nodes")
        XCTAssertEqual(allocator.freeSlots, 12 * 8, "a failed allocation of replicas takes nothing")
        XCTAssertEqual(allocator.allocateGroups(count: 2, instances: 6, processesPerNode: 8)?.count, 2)
        XCTAssertEqual(allocator.freeSlots, 0)
    }

    func testExclusionKeepsSiblingNodesOut() {
        var allocator = Allocator(slots: [2, 2, 2, 2])
        let first = allocator.allocateGroup(instances: 2, processesPerNode: 1)!
        let second = allocator.allocateGroup(instances: 2, processesPerNode: 1, excluding: Set(first))!
        XCTAssertTrue(Set(first).isDisjoint(with: second))
        XCTAssertNil(allocator.allocateGroup(instances: 1, processesPerNode: 1, excluding: Set(first + second)))
    }

    func testImpossibleTasksAreNamedUpFront() {
        let allocator = Allocator(slots: [4, 4, 2], usable: [true, true, false])
        XCTAssertNil(allocator.impossibility(instances: 2, processesPerNode: 4))
        XCTAssertTrue(allocator.impossibility(instances: 3, processesPerNode: 1)!.contains("2 such nodes"))
        XCTAssertTrue(allocator.impossibility(instances: 1, processesPerNode: 5)!.contains("largest usable node has 4 slots"))
        XCTAssertNil(allocator.impossibility(instances: 2, processesPerNode: 2, replicas: 5), "replicas may queue")
    }

    func testPackFillsBusyNodesSpreadPrefersEmptyOnes() {
        var pack = Allocator(slots: [4, 4], policy: .pack)
        let a = pack.allocateSlot()!
        XCTAssertEqual(pack.allocateSlot(), a, "pack: the same node again")
        var spread = Allocator(slots: [4, 4], policy: .spread)
        let b = spread.allocateSlot()!
        XCTAssertNotEqual(spread.allocateSlot(), b, "spread: the other node")
    }

    func testUnusableNodesGetNoWork() {
        var allocator = Allocator(slots: [1, 1, 1])
        allocator.setUsable(1, false)
        var taken: [Int] = []
        while let node = allocator.allocateSlot() { taken.append(node) }
        XCTAssertEqual(taken.sorted(), [0, 2])
        allocator.setUsable(1, true)
        XCTAssertEqual(allocator.allocateSlot(), 1)
    }

    func testRandomOperationsNeverDoubleBook() {
        var generator = SystemRandomNumberGenerator()
        let slots = (0..<40).map { _ in Int.random(in: 1...8, using: &generator) }
        var allocator = Allocator(slots: slots)
        var used = Array(repeating: 0, count: slots.count)
        var held: [([Int], Int)] = []
        for _ in 0..<5000 {
            if Bool.random(using: &generator) || held.isEmpty {
                let n = Int.random(in: 1...6, using: &generator), p = Int.random(in: 1...4, using: &generator)
                if let group = allocator.allocateGroup(instances: n, processesPerNode: p) {
                    XCTAssertEqual(Set(group).count, n)
                    for node in group { used[node] += p; XCTAssertLessThanOrEqual(used[node], slots[node], "slot given twice") }
                    held.append((group, p))
                }
            } else {
                let (group, p) = held.remove(at: Int.random(in: 0..<held.count, using: &generator))
                allocator.release(group: group, processesPerNode: p)
                for node in group { used[node] -= p }
            }
            XCTAssertEqual(allocator.freeSlots, slots.reduce(0, +) - used.reduce(0, +))
        }
    }
}

final class AllocatorPinningTests: XCTestCase {
    func testSlotsOnAGivenNode() {
        var allocator = Allocator(slots: [2, 2])
        XCTAssertTrue(allocator.allocate(slots: 2, on: 1))
        XCTAssertFalse(allocator.allocate(slots: 1, on: 1), "node 1 is full")
        XCTAssertEqual(allocator.allocateGroup(instances: 1, processesPerNode: 1), [0])
        allocator.setUsable(0, false)
        XCTAssertFalse(allocator.allocate(slots: 1, on: 0), "unusable")
    }

    /// An exclusive group takes only wholly free nodes, and every slot of each; pack takes the
    /// smallest that fit, and releasing gives every slot back.
    func testAnExclusiveGroupTakesWholeFreeNodes() {
        var allocator = Allocator(slots: [8, 4, 4, 2])
        XCTAssertTrue(allocator.allocate(slots: 1, on: 1), "node 1 is no longer wholly free")
        let group = allocator.allocateGroup(instances: 2, processesPerNode: 2, exclusive: true)
        XCTAssertEqual(group.map(Set.init), [2, 3], "the smallest wholly free nodes with 2 slots")
        XCTAssertEqual(allocator.free, [8, 3, 0, 0])
        XCTAssertNil(allocator.allocateGroup(instances: 2, processesPerNode: 1, exclusive: true), "node 1 has free slots but is not free")
        XCTAssertEqual(allocator.free, [8, 3, 0, 0], "a failed allocation takes nothing")
        allocator.release(group: group!, processesPerNode: 2, exclusive: true)
        XCTAssertEqual(allocator.free, [8, 3, 4, 2])
        XCTAssertTrue(allocator.occupy(group: [0], processesPerNode: 3, exclusive: true))
        XCTAssertEqual(allocator.free[0], 0, "an adopted exclusive attempt holds its whole node again")
    }

    /// GPUs are handed out by position, the lowest free first, never twice; a node without
    /// enough free GPUs or memory is passed over even when its slots are free; what was
    /// taken comes back on release, and an adopted group takes exactly its own GPUs back.
    func testGPUsAndMemoryAreTakenOnlyWhereFreeAndGivenBack() throws {
        var allocator = Allocator(slots: [4, 4, 4], gpus: [4, 2, 0], memory: [8192, 4096, 0])
        let two = Allocator.Extras(gpus: 2, memory: 1024)
        let first = try XCTUnwrap(allocator.place(instances: 1, processesPerNode: 1, extras: two))
        let second = try XCTUnwrap(allocator.place(instances: 1, processesPerNode: 1, extras: two))
        let third = try XCTUnwrap(allocator.place(instances: 1, processesPerNode: 1, extras: two))
        // Pack: the busiest node that has them; node 2 has no GPUs at all.
        XCTAssertEqual([first, second, third].map(\.nodes), [[0], [0], [1]])
        XCTAssertEqual([first, second, third].map(\.gpus), [[[0, 1]], [[2, 3]], [[0, 1]]])
        XCTAssertEqual(allocator.free, [2, 3, 4])
        XCTAssertEqual(allocator.freeMemory, [6144, 3072, 0])
        XCTAssertNil(allocator.place(instances: 1, processesPerNode: 1, extras: Allocator.Extras(gpus: 1)), "every GPU is taken")
        XCTAssertNil(allocator.place(instances: 1, processesPerNode: 1, extras: Allocator.Extras(memory: 6145)), "no node has 6145 MiB free")
        XCTAssertEqual(allocator.free, [2, 3, 4], "a failed placement takes nothing")
        XCTAssertEqual(allocator.place(instances: 1, processesPerNode: 4, extras: .none)?.nodes, [2], "work without GPUs still fits")
        allocator.release(group: first.nodes, processesPerNode: 1, gpus: first.gpus, memory: 1024)
        XCTAssertEqual(allocator.freeGPUs[0], 0b0011, "GPUs 0 and 1 of node 0 are free again")
        XCTAssertEqual(allocator.place(instances: 1, processesPerNode: 1, extras: Allocator.Extras(gpus: 1))?.gpus, [[0]])
        // A restarted controller takes an attempt's own GPUs back, or nothing if one is taken.
        XCTAssertFalse(allocator.occupy(group: [0], processesPerNode: 1, gpus: [[0]]), "GPU 0 of node 0 is taken")
        XCTAssertFalse(allocator.occupy(group: [0], processesPerNode: 1, gpus: [[1, 1]]), "a GPU named twice")
        XCTAssertFalse(allocator.occupy(group: [0], processesPerNode: 1, memory: 8192), "more memory than is free")
        XCTAssertEqual(allocator.free[0], 2, "a refused adoption takes nothing")
        XCTAssertTrue(allocator.occupy(group: [0], processesPerNode: 1, gpus: [[1]], memory: 1024))
        XCTAssertEqual(allocator.freeGPUs[0], 0)
        // Reservations look only at nodes that could ever hold the group.
        XCTAssertEqual(allocator.mostFree(count: 1, minimumCapacity: 1, extras: Allocator.Extras(gpus: 3)), [0])
        XCTAssertNil(allocator.mostFree(count: 2, minimumCapacity: 1, extras: Allocator.Extras(gpus: 3)))
    }

    /// An exclusive group with GPUs takes whole nodes that have them free.
    func testAnExclusiveGroupWithGPUsTakesWholeNodesThatHaveThem() throws {
        var allocator = Allocator(slots: [2, 2, 2], gpus: [0, 1, 2])
        let placed = try XCTUnwrap(allocator.place(instances: 2, processesPerNode: 1, extras: Allocator.Extras(gpus: 1), exclusive: true))
        XCTAssertEqual(Set(placed.nodes), [1, 2])
        XCTAssertEqual(allocator.free, [2, 0, 0])
        allocator.release(group: placed.nodes, processesPerNode: 1, exclusive: true, gpus: placed.gpus)
        XCTAssertEqual(allocator.freeGPUs, [0, 0b1, 0b11])
    }
}
