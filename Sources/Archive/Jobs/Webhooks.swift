import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// Webhooks (issue 12 §5): the clinic's systems hear of `photo.uploaded|viewed|downloaded|deleted|shared`,
/// `consent.granted|withdrawn` and `comparison.done`. Each event is a job on the clinic's queue (so it survives a
/// restart and is delivered by one process), POSTed as JSON carrying identifiers only (UIDs, record ids, the
/// patient's keyed hash; never a name or an ID), signed with HMAC-SHA256 under the shared secret, and retried with
/// exponential back-off until the receiver answers 2xx: delivered at least once (a receiver deduplicates on
/// `Facet-Delivery`).
public enum Webhooks {
    public static let kind = "webhook"
    public static let events: Set<String> = [
        "photo.uploaded", "photo.viewed", "photo.downloaded", "photo.deleted", "photo.shared", "consent.granted",
        "consent.withdrawn", "comparison.done",
    ]

    /// Where and how events go.
    public struct Settings: Sendable, Equatable {
        public var url: URL
        public var secret: Data
        public var events: Set<String>
        /// The first retry's delay; each next one doubles it, up to an hour.
        public var retrySeconds: Double
        /// Deliveries tried before the event is given up (and its job failed, with the last reason).
        public var attempts: Int

        public init(url: URL, secret: Data, events: Set<String>, retrySeconds: Double = 10, attempts: Int = 12) {
            self.url = url
            self.secret = secret
            self.events = events
            self.retrySeconds = retrySeconds
            self.attempts = attempts
        }

        /// The delay before the attempt after `attempt` (1-based).
        public func delay(after attempt: Int) -> Double {
            min(3600, retrySeconds * pow(2, Double(max(0, attempt - 1))))
        }
    }

    /// One event, as it is queued and sent.
    public struct Event: Sendable, Equatable {
        public var name: String
        public var tenant: String
        public var time: Date
        public var patient: String?
        public var study: String?
        public var instances: [String]
        /// Record ids: the consent, share, export or comparison the event is about.
        public var records: [String: String]

        public init(
            name: String, tenant: String, time: Date = Date(), patient: String? = nil, study: String? = nil,
            instances: [String] = [], records: [String: String] = [:]
        ) {
            self.name = name
            self.tenant = tenant
            self.time = time
            self.patient = patient
            self.study = study
            self.instances = instances
            self.records = records
        }

        /// The body sent (keys sorted; the delivery id is the job's).
        public func json(delivery: String) -> Data {
            func quote(_ text: String) -> String {
                let data = try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
                return data.map { String(decoding: $0.dropFirst().dropLast(), as: UTF8.self) } ?? "\"\""
            }
            var fields = [
                "\"delivery\":\(quote(delivery))", "\"event\":\(quote(name))", "\"tenant\":\(quote(tenant))",
                "\"time\":\(quote(Formatting.timestamp(time)))",
                "\"instances\":[" + instances.map(quote).joined(separator: ",") + "]",
            ]
            if let patient { fields.append("\"patient\":\(quote(patient))") }
            if let study { fields.append("\"study\":\(quote(study))") }
            for (key, value) in records.sorted(by: { $0.key < $1.key }) {
                fields.append("\(quote(key)):\(quote(value))")
            }
            return Data(("{" + fields.sorted().joined(separator: ",") + "}").utf8)
        }

        static func decode(_ data: Data) -> Event? {
            guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
                let name = object["event"] as? String, let tenant = object["tenant"] as? String
            else { return nil }
            var records: [String: String] = [:]
            for key in ["consent", "share", "export", "comparison"] { records[key] = object[key] as? String }
            return Event(
                name: name, tenant: tenant,
                time: (object["time"] as? String).flatMap(Formatting.instant) ?? Date(),
                patient: object["patient"] as? String, study: object["study"] as? String,
                instances: object["instances"] as? [String] ?? [], records: records)
        }
    }

    /// Queues an event for delivery (nothing when it is not subscribed).
    public static func publish(_ event: Event, settings: Settings, queue: any JobQueue) async throws(ArchiveError) {
        guard settings.events.contains(event.name) else { return }
        _ = try await queue.enqueue(kind: kind, payload: event.json(delivery: ""), subject: event.patient)
    }

    /// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: what the receiver recomputes (and refuses when
    /// `t` is too old, against replays).
    public static func signature(secret: Data, timestamp: Int, body: Data) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("\(timestamp).".utf8) + body, using: SymmetricKey(data: secret))
        return "t=\(timestamp),v1=" + Formatting.hex(Data(mac))
    }

    public enum Delivery: Sendable, Equatable {
        case delivered
        case failed(String)
    }

    /// One delivery attempt of a queued event: POST with the signature; 2xx is delivered, anything else (another
    /// status, no answer in 10 s) failed with the reason.
    public static func deliver(_ job: Job, settings: Settings, client: HTTPClient) async -> Delivery {
        guard var event = Event.decode(job.payload) else { return .failed("the event cannot be read") }
        event.records = event.records.filter { !$0.value.isEmpty }
        let body = event.json(delivery: job.id)
        var request = HTTPClientRequest(url: settings.url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Facet-Webhooks/1")
        request.headers.add(name: "Facet-Event", value: event.name)
        request.headers.add(name: "Facet-Delivery", value: job.id)
        request.headers.add(name: "Facet-Attempt", value: String(job.attempts))
        request.headers.add(
            name: "Facet-Signature",
            value: signature(secret: settings.secret, timestamp: Int(Date().timeIntervalSince1970), body: body))
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            // The receiver's answer is not kept (it may echo anything); only its status.
            _ = try? await response.body.collect(upTo: 64 << 10)
            return (200..<300).contains(Int(response.status.code))
                ? .delivered : .failed("the receiver answered \(response.status.code)")
        } catch {
            return .failed("the receiver could not be reached")
        }
    }
}

extension Webhooks {
    /// The event a successful request's audited action is, if any (the audit middleware publishes it).
    public static func event(forAction action: String) -> String? {
        func starts(_ prefixes: String...) -> Bool { prefixes.contains { action.hasPrefix($0) } }
        if starts("STOW store", "upload photos", "upload scan") { return "photo.uploaded" }
        if starts("WADO retrieve", "WADO rendered", "WADO thumbnail", "WADO frames") { return "photo.viewed" }
        if starts("retrieve original", "export ", "share download") { return "photo.downloaded" }
        if action == "delete" { return "photo.deleted" }
        if starts("share (") { return "photo.shared" }
        if starts("consent granted") { return "consent.granted" }
        if starts("consent withdrawn") { return "consent.withdrawn" }
        return nil
    }

    /// Record ids an action names (`consent <id>`, `share <id>`, `export <id>`) and the patient keys it names.
    public static func identifiers(in action: String) -> (records: [String: String], patient: String?) {
        var records: [String: String] = [:]
        var patient: String?
        let words = action.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "(" || $0 == ")" })
        for (index, word) in words.enumerated() where index + 1 < words.count {
            let next = String(words[index + 1])
            switch word {
            case "consent", "share", "export", "comparison":
                if ClinicTerms.recordID(next) != nil { records[String(word)] = next }
            case "patient":
                if next.count == 64, next.allSatisfy(\.isHexDigit) { patient = next }
            default: continue
            }
        }
        return (records, patient)
    }
}

/// Sends queued webhook events (one HTTP client for the process).
public final class WebhookSender: Sendable {
    private let client = HTTPClient(eventLoopGroupProvider: .singleton)

    public init() {}

    public func send(_ job: Job, settings: Webhooks.Settings) async -> Webhooks.Delivery {
        await Webhooks.deliver(job, settings: settings, client: client)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }
}
