import XCTest
@testable import Launcher

final class EventHubTests: XCTestCase {
    /// The ring keeps the newest events; a reader resumes after any id, and one that fell
    /// behind what is kept learns how many it missed.
    func testReadersResumeAfterAnIdAndAreToldWhatTheyMissed() {
        let hub = EventHub(capacity: 4)
        XCTAssertEqual(hub.events(after: 0).events, [])
        for index in 1...3 { hub.publish(ServiceEvent(kind: "k\(index)")) }
        XCTAssertEqual(hub.events(after: 0).events.map(\.id), [1, 2, 3])
        XCTAssertEqual(hub.events(after: 2).events.map(\.kind), ["k3"])
        XCTAssertEqual(hub.events(after: 3).events, [])
        for index in 4...10 { hub.publish(ServiceEvent(kind: "k\(index)")) }
        let late = hub.events(after: 2)
        XCTAssertEqual(late.events.map(\.id), [7, 8, 9, 10], "the 4 kept, oldest first")
        XCTAssertEqual(late.missed, 4, "3..6 are gone")
        XCTAssertEqual(hub.events(after: 8).events.map(\.id), [9, 10])
        XCTAssertEqual(hub.events(after: 8).missed, 0)
        XCTAssertEqual(hub.events(after: 0, limit: 2).events.map(\.id), [7, 8])
        XCTAssertEqual(hub.newestId, 10)
    }
}
