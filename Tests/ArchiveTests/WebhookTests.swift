import Foundation
import Testing

@testable import Archive

/// Webhook events (issue 12 §5): the signature a receiver recomputes (vector from Python's hmac), which actions are
/// which events, identifiers only in the body, back-off; and the queue's deferred retry on SQLite and PostgreSQL.
@Suite struct WebhookTests {
    @Test func theSignatureIsHMACSHA256OfTimestampAndBody() {
        let signature = Webhooks.signature(
            secret: Data("0123456789abcdef-secret".utf8), timestamp: 1_767_225_600,
            body: Data("{\"event\":\"photo.uploaded\"}".utf8))
        #expect(signature == "t=1767225600,v1=3c376cde9befaef98419859013f7c7d4fcc59d45c1ac5fb2615c5f6e632b99bb")
    }

    @Test func actionsAreEventsAndTheBodyCarriesIdentifiersOnly() throws {
        #expect(Webhooks.event(forAction: "upload photos") == "photo.uploaded")
        #expect(Webhooks.event(forAction: "WADO rendered") == "photo.viewed")
        #expect(Webhooks.event(forAction: "share download (patient x, share y)") == "photo.downloaded")
        #expect(Webhooks.event(forAction: "delete") == "photo.deleted")
        #expect(Webhooks.event(forAction: "QIDO studies") == nil)
        let patient = String(repeating: "c", count: 64)
        let consent = "3f2b1c4d-0000-4000-8000-000000000001"
        let (records, named) = Webhooks.identifiers(
            in: "consent withdrawn (patient \(patient), consent \(consent))")
        #expect(records == ["consent": consent] && named == patient)
        let event = Webhooks.Event(
            name: "consent.withdrawn", tenant: "default", time: Date(timeIntervalSince1970: 0), patient: patient,
            records: records)
        let body = try #require(
            try JSONSerialization.jsonObject(with: event.json(delivery: "d-1")) as? [String: Any])
        #expect(Set(body.keys) == ["delivery", "event", "tenant", "time", "instances", "patient", "consent"])
        #expect(body["time"] as? String == "1970-01-01T00:00:00.000Z")
        let settings = Webhooks.Settings(
            url: URL(string: "https://emr.example/hook")!, secret: Data(), events: Webhooks.events, retrySeconds: 10)
        #expect((1...3).map(settings.delay(after:)) == [10, 20, 40] && settings.delay(after: 20) == 3600)
    }

    @Test(arguments: IndexKind.available)
    func aRetriedJobWaitsItsTurnAndKeepsItsAttempts(_ kind: IndexKind) async throws {
        let queue = try await kind.place().queue()
        let id = try await queue.enqueue(kind: Webhooks.kind, payload: Data("{}".utf8))
        let first = try #require(try await queue.claim(kind: Webhooks.kind, worker: "w", lease: 30))
        #expect(first.id == id && first.attempts == 1)
        // An hour away: not taken now.
        try await queue.retry(id, worker: "w", at: Date().addingTimeInterval(3600), reason: "the receiver answered 500")
        #expect(try await queue.job(id)?.status == .queued)
        #expect(try await queue.job(id)?.failure == "the receiver answered 500")
        #expect(try await queue.claim(kind: Webhooks.kind, worker: "w", lease: 30) == nil, "not before its time")
        // Another, due already: taken, with its attempts counted on.
        let other = try await queue.enqueue(kind: Webhooks.kind, payload: Data("{}".utf8))
        _ = try #require(try await queue.claim(kind: Webhooks.kind, worker: "w", lease: 30))
        try await queue.retry(other, worker: "w", at: Date().addingTimeInterval(-1), reason: "no answer")
        let second = try #require(try await queue.claim(kind: Webhooks.kind, worker: "w", lease: 30))
        #expect(second.id == other && second.attempts == 2)
        try await queue.finish(other, worker: "w", result: Data("delivered".utf8))
        #expect(try await queue.job(other)?.status == .done)
        #expect(try await queue.job(id)?.status == .queued, "the first still waits")
    }
}
