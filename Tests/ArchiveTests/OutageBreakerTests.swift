import Foundation
import Testing

@testable import Archive

/// The fail-fast window of the PostgreSQL index: calls pass while the server answers; after a failure to reach it
/// they are refused for the pause, then exactly one call at a time tries again, and the first answer reopens the way.
@Suite struct OutageBreakerTests {
    let start = Date(timeIntervalSince1970: 1_767_225_600)

    @Test func callsPassUntilTheServerCannotBeReached() {
        let breaker = OutageBreaker(pause: 2)
        #expect(breaker.admit(now: start) == .pass)
        breaker.answered()
        #expect(breaker.admit(now: start + 100) == .pass)
    }

    @Test func afterAFailureCallsAreRefusedForThePauseThenOneProbesAtATime() {
        let breaker = OutageBreaker(pause: 2)
        breaker.failed(now: start)
        #expect(breaker.admit(now: start + 1) == .refuse)
        #expect(breaker.admit(now: start + 2.5) == .probe)
        // While the probe waits, every other call is refused, however long it takes.
        #expect(breaker.admit(now: start + 2.6) == .refuse)
        #expect(breaker.admit(now: start + 30) == .refuse)
        // A call admitted before the window opened fails late: the probe still runs alone.
        breaker.failed(now: start + 20)
        #expect(breaker.admit(now: start + 25) == .refuse)
        // The probe failed too: another pause from then.
        breaker.failed(now: start + 31, probe: true)
        #expect(breaker.admit(now: start + 32) == .refuse)
        #expect(breaker.admit(now: start + 33.5) == .probe)
        breaker.answered()
        #expect(breaker.admit(now: start + 33.6) == .pass)
        #expect(breaker.admit(now: start + 33.7) == .pass)
    }

    @Test func unreachableServersTripItAndRefusedStatementsDoNot() {
        #expect(PostgresDatabase.isOutage(ArchiveError(.unavailable, "did not answer in time")))
        #expect(!PostgresDatabase.isOutage(ArchiveError(.integrity, "a row does not open")))
        // A cancelled task or the work's own error says nothing about the server.
        #expect(!PostgresDatabase.isOutage(CancellationError()))
        #expect(!PostgresDatabase.isOutage(CocoaError(.fileReadCorruptFile)))
    }
}
