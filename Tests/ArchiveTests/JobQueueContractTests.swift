import Foundation
import Testing

@testable import Archive

/// The contract of `JobQueue`, on SQLite and PostgreSQL: each job taken once, leases, cancellation, a test job run
/// to its end.
@Suite struct JobQueueContractTests {
    @Test(arguments: IndexKind.available)
    func aJobIsTakenOnceRunAndItsResultKept(_ kind: IndexKind) async throws {
        let queue = try await kind.place().queue()
        let id = try await queue.enqueue(kind: "test", payload: Data("compare A with B".utf8))
        #expect(try await queue.job(id)?.status == .queued)
        #expect(try await queue.claim(kind: "other", worker: "w1", lease: 30) == nil)
        let job = try #require(try await queue.claim(kind: "test", worker: "w1", lease: 30))
        #expect(job.id == id)
        #expect(job.payload == Data("compare A with B".utf8))
        #expect(job.attempts == 1)
        #expect(try await queue.claim(kind: "test", worker: "w2", lease: 30) == nil)
        #expect(try await queue.heartbeat(id, worker: "w1", progress: 0.5, lease: 30))
        #expect(try await queue.job(id)?.progress == 0.5)
        #expect(!(try await queue.heartbeat(id, worker: "w2", progress: 0.9, lease: 30)))
        try await queue.finish(id, worker: "w1", result: Data("+2.4 ml".utf8))
        let done = try #require(try await queue.job(id))
        #expect(done.status == .done)
        #expect(done.result == Data("+2.4 ml".utf8))
        #expect(done.progress == 1)
        #expect(!(try await queue.cancel(id)), "an ended job cannot be cancelled")
    }

    @Test(arguments: IndexKind.available)
    func jobsOfAKindAreListedNewestFirst(_ kind: IndexKind) async throws {
        let queue = try await kind.place().queue()
        var ids: [String] = []
        for number in 0..<3 {
            ids.append(try await queue.enqueue(kind: "listed", payload: Data("\(number)".utf8)))
            try await Task.sleep(nanoseconds: 5_000_000)
        }
        _ = try await queue.enqueue(kind: "other", payload: Data())
        #expect(try await queue.jobIDs(kind: "listed", limit: 10) == ids.reversed())
        #expect(try await queue.jobIDs(kind: "listed", limit: 2) == Array(ids.reversed().prefix(2)))
        #expect(try await queue.jobIDs(kind: "none", limit: 10).isEmpty)
        // By subject: that subject's jobs only (jobs without a subject, queued before subjects were kept, too).
        let mine = try await queue.enqueue(kind: "listed", payload: Data("a".utf8), subject: "patient-a")
        let theirs = try await queue.enqueue(kind: "listed", payload: Data("b".utf8), subject: "patient-b")
        let bySubject = try await queue.jobIDs(kind: "listed", subject: "patient-a", limit: 100)
        #expect(bySubject.contains(mine) && !bySubject.contains(theirs))
        #expect(Set(bySubject) == Set(ids + [mine]))
        #expect(try await queue.jobIDs(kind: "listed", subject: "patient-b", limit: 1) == [theirs])
        #expect(try await queue.jobIDs(kind: "listed", limit: 100).count == ids.count + 2)
    }

    @Test(arguments: IndexKind.available)
    func cancelledAndFailedJobsSayWhy(_ kind: IndexKind) async throws {
        let queue = try await kind.place().queue()
        let waiting = try await queue.enqueue(kind: "test", payload: Data())
        #expect(try await queue.cancel(waiting))
        #expect(try await queue.job(waiting)?.status == .cancelled)
        #expect(try await queue.claim(kind: "test", worker: "w1", lease: 30) == nil)
        let running = try await queue.enqueue(kind: "test", payload: Data())
        _ = try #require(try await queue.claim(kind: "test", worker: "w1", lease: 30))
        #expect(try await queue.cancel(running))
        // The worker learns at its next heartbeat and stops; its late result is not taken.
        #expect(!(try await queue.heartbeat(running, worker: "w1", progress: 0.3, lease: 30)))
        try await queue.finish(running, worker: "w1", result: Data("late".utf8))
        #expect(try await queue.job(running)?.status == .cancelled)
        let failing = try await queue.enqueue(kind: "test", payload: Data())
        _ = try #require(try await queue.claim(kind: "test", worker: "w1", lease: 30))
        try await queue.fail(failing, worker: "w1", reason: "the two captures are of different patients")
        let failed = try #require(try await queue.job(failing))
        #expect(failed.status == .failed)
        #expect(failed.failure == "the two captures are of different patients")
        #expect(try await queue.job("no-such-job") == nil)
    }

    @Test(arguments: IndexKind.available)
    func aJobWhoseWorkerDiedIsTakenAgainThenFails(_ kind: IndexKind) async throws {
        let place = try kind.place()
        let queue = try await place.queue()
        let id = try await queue.enqueue(kind: "test", payload: Data("x".utf8))
        for attempt in 1...maximumJobAttempts {
            let job = try #require(try await queue.claim(kind: "test", worker: "w\(attempt)", lease: 0.2))
            #expect(job.attempts == attempt)
            // The worker dies: no heartbeat, the lease runs out.
            try await Task.sleep(nanoseconds: 300_000_000)
        }
        #expect(!(try await queue.heartbeat(id, worker: "w1", progress: 0.1, lease: 30)))
        // A restart (another process) sees the same: the job failed, interrupted every time.
        let again = try await place.queue(second: true)
        #expect(try await again.claim(kind: "test", worker: "w9", lease: 30) == nil)
        let failed = try #require(try await again.job(id))
        #expect(failed.status == .failed)
        #expect(failed.failure == "the job was interrupted \(maximumJobAttempts) times")
    }

    @Test(arguments: IndexKind.available)
    func workersOnSeveralProcessesTakeEachJobExactlyOnce(_ kind: IndexKind) async throws {
        let place = try kind.place()
        let queues = [try await place.queue(), try await place.queue(second: true)]
        var ids: Set<String> = []
        for number in 0..<30 { ids.insert(try await queues[0].enqueue(kind: "test", payload: Data("\(number)".utf8))) }
        let taken = try await withThrowingTaskGroup(of: [String].self) { group in
            for worker in 0..<6 {
                group.addTask {
                    var mine: [String] = []
                    while let job = try await queues[worker % 2].claim(kind: "test", worker: "w\(worker)", lease: 60) {
                        mine.append(job.id)
                        try await queues[worker % 2].finish(job.id, worker: "w\(worker)", result: Data())
                    }
                    return mine
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(taken.count == ids.count, "no job was taken twice")
        #expect(Set(taken) == ids, "every job was taken")
    }
}
