import Foundation
import Testing

@testable import ArchiveServer

/// The doorbell that wakes idle job workers: a ring wakes a waiter, a ring with nobody waiting is kept for the
/// next wait (once), and without a ring the wait ends on its timeout. `wait` says which ended it.
@Suite struct DoorbellTests {
    @Test func aRingWakesAWaiter() async {
        let bell = Doorbell()
        async let woken = bell.wait(seconds: 120)
        try? await Task.sleep(nanoseconds: 100_000_000)
        bell.ring()
        #expect(await woken)
    }

    @Test func aRingWithNobodyWaitingIsKeptForTheNextWaitOnly() async {
        let bell = Doorbell()
        bell.ring()
        #expect(await bell.wait(seconds: 120))
        #expect(await !bell.wait(seconds: 0.2), "the kept ring was used up")
    }

    @Test func withoutARingTheWaitTimesOutAndEveryWaiterWakesOnARing() async {
        let bell = Doorbell()
        #expect(await !bell.wait(seconds: 0.2))
        let woken = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 { group.addTask { await bell.wait(seconds: 120) } }
            // Rung until every waiter has heard it (one that was not waiting yet finds the kept ring).
            var answers: [Bool] = []
            while answers.count < 4 {
                bell.ring()
                if let answer = await group.next() { answers.append(answer) }
            }
            return answers
        }
        #expect(woken == [true, true, true, true])
    }
}
