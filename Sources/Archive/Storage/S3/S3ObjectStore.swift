import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Where an S3-compatible bucket is and how to reach it: `s3://bucket/prefix` plus the endpoint, region and
/// credentials (from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`).
public struct S3Location: Sendable, Hashable {
    /// The service's base URL, e.g. `http://127.0.0.1:8333` or `https://s3.eu-central-1.amazonaws.com`.
    public var endpoint: URL
    public var region: String
    public var bucket: String
    /// Keys go under this prefix (no leading or trailing slash; may be empty).
    public var prefix: String
    public var credentials: SigV4Signer.Credentials
    /// Virtual-hosted addressing (`bucket.host/key`, AWS's default) instead of path-style (`host/bucket/key`, what
    /// SeaweedFS, Ceph RGW and MinIO answer by default).
    public var virtualHosted: Bool

    public init(
        endpoint: URL, region: String, bucket: String, prefix: String, credentials: SigV4Signer.Credentials,
        virtualHosted: Bool = false
    ) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.prefix = prefix
        self.credentials = credentials
        self.virtualHosted = virtualHosted
    }

    /// Parses `s3://bucket/prefix`; bucket names follow S3's rules, the prefix takes letters, digits and `._-/`.
    public static func parse(
        _ text: String, endpoint: String?, region: String?, environment: [String: String]
    ) throws(ArchiveError) -> S3Location {
        guard text.hasPrefix("s3://") else { throw ArchiveError(.invalidInput, "blobs must be s3://bucket/prefix") }
        let rest = text.dropFirst(5)
        let bucket = String(rest.prefix { $0 != "/" })
        let prefix = String(rest.dropFirst(bucket.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard (3...63).contains(bucket.count),
            bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") }),
            bucket.first?.isLetter == true || bucket.first?.isNumber == true
        else { throw ArchiveError(.invalidInput, "the bucket name is not a valid S3 bucket name") }
        guard prefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-/".contains($0)) }),
            !prefix.contains("//"), !prefix.split(separator: "/").contains(where: { $0 == ".." || $0 == "." })
        else { throw ArchiveError(.invalidInput, "the key prefix takes letters, digits and ._-/ only") }
        let region = region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let endpointText = endpoint ?? "https://s3.\(region).amazonaws.com"
        guard let url = URL(string: endpointText), let scheme = url.scheme, ["http", "https"].contains(scheme),
            url.host != nil, url.path.isEmpty || url.path == "/", url.query == nil, url.user == nil
        else { throw ArchiveError(.invalidInput, "s3-endpoint must be an http(s) URL without a path") }
        guard let key = environment["AWS_ACCESS_KEY_ID"], !key.isEmpty,
            let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty
        else {
            throw ArchiveError(.invalidInput, "an S3 store needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set")
        }
        return S3Location(
            endpoint: url, region: region, bucket: bucket, prefix: prefix,
            credentials: .init(
                accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"]),
            virtualHosted: endpoint == nil)
    }

    /// The same bucket under a further prefix (a clinic's own keys).
    public func appending(_ component: String) -> S3Location {
        var copy = self
        copy.prefix = prefix.isEmpty ? component : "\(prefix)/\(component)"
        return copy
    }
}

/// An `ObjectStore` on any S3-compatible service (AWS S3, SeaweedFS, Ceph RGW, MinIO), signed with SigV4 over
/// AsyncHTTPClient. Every request carries the SHA-256 of its payload (stores such as Ceph check it). Objects larger
/// than `partSize` go up in a multipart upload, part by part from the file (memory stays at one part); reads are
/// ranged GETs. 5xx answers, 429 and transport failures are retried with exponential back-off (`attempts` in
/// all); a store still failing gives `.unavailable`. Blobs live at `prefix/blobs/<id>`, quarantined ones at
/// `prefix/quarantine/<id>`; the bucket is never listed but for the quarantine prefix.
public struct S3ObjectStore: ObjectStore {
    public let location: S3Location
    public let scratchFolder: URL
    let client: HTTPClient
    let signer: SigV4Signer
    let partSize: Int
    let attempts: Int
    /// Set when a request ran out of attempts on transport failures: for a few seconds after, requests fail at once
    /// (`.unavailable`) instead of each waiting out its own retries while the store is away.
    let outage = Outage()

    /// When the store was last found unreachable.
    final class Outage: @unchecked Sendable {
        private let lock = NSLock()
        private var until = Date.distantPast

        var active: Bool { lock.withLock { Date() < until } }
        func begin(seconds: TimeInterval) { lock.withLock { until = Date().addingTimeInterval(seconds) } }
        func end() { lock.withLock { until = .distantPast } }
    }
    /// The deadline of a request without a body to move; one with a body gets a second more per 256 KiB of it (an
    /// uplink of 2 Mbit/s still gets its parts through).
    let timeout: TimeAmount

    public init(
        location: S3Location, scratchFolder: URL, client: HTTPClient = .shared, partSize: Int = 16 << 20,
        attempts: Int = 3, timeoutSeconds: Int64 = 5
    ) throws(ArchiveError) {
        precondition(partSize >= 5 << 20, "S3 parts are at least 5 MiB")
        self.location = location
        self.scratchFolder = scratchFolder
        self.client = client
        self.signer = SigV4Signer(credentials: location.credentials, region: location.region)
        self.partSize = partSize
        self.attempts = max(1, attempts)
        self.timeout = .seconds(timeoutSeconds)
        try createPrivateDirectory(scratchFolder)
    }

    // MARK: addressing

    func objectKey(_ key: String, under folder: String = "blobs") throws(ArchiveError) -> String {
        guard BlobReference.isValidID(key) else {
            throw ArchiveError(.notFound, "no such blob")
        }
        return location.prefix.isEmpty ? "\(folder)/\(key)" : "\(location.prefix)/\(folder)/\(key)"
    }

    /// The URL of an object key (or of the bucket, for `nil`), with an already percent-encoded query.
    func url(_ objectKey: String?, query: String? = nil) -> URL {
        var components = URLComponents()
        components.scheme = location.endpoint.scheme
        components.port = location.endpoint.port
        let host = location.endpoint.host ?? ""
        var path = ""
        if location.virtualHosted {
            components.host = "\(location.bucket).\(host)"
        } else {
            components.host = host
            path = "/\(location.bucket)"
        }
        // Keys are encoded segment by segment: a key read back from a listing may hold any character.
        let segment = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
        let key = (objectKey ?? "").split(separator: "/", omittingEmptySubsequences: false).map {
            $0.addingPercentEncoding(withAllowedCharacters: segment) ?? ""
        }.joined(separator: "/")
        path += "/" + key
        components.percentEncodedPath = path
        if let query { components.percentEncodedQuery = query }
        return components.url ?? location.endpoint
    }

    static func encodeQueryValue(_ text: String) -> String {
        let unreserved = CharacterSet(
            charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
        return text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    // MARK: requests

    struct Answer {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: Data
    }

    /// Sends one signed request, retrying 5xx, 429 and transport failures with back-off. `body` is sent with its
    /// SHA-256. Answers of other statuses are returned for the caller to judge.
    func send(
        _ method: HTTPMethod, _ url: URL, body: Data = Data(), headers extra: [(String, String)] = [],
        maximumBody: Int = 1 << 20, extraSeconds: Int64 = 0
    ) async throws(ArchiveError) -> Answer {
        guard !outage.active else { throw ArchiveError(.unavailable, "the object store cannot be reached") }
        // Hashing a large body is work for the storage pool, not a cooperative thread.
        let payloadHash =
            body.count > 1 << 16
            ? try await BlockingPool.storage.runTyped { SigV4Signer.payloadHash(body) } : SigV4Signer.payloadHash(body)
        var failure = "no answer"
        var unreachable = false
        for attempt in 0..<attempts {
            if attempt > 0 {
                // 100 ms, 200 ms, 400 ms ... with jitter, so that replicas do not retry in step.
                let delay = UInt64(100_000_000 << (attempt - 1)) + UInt64.random(in: 0..<50_000_000)
                try? await Task.sleep(nanoseconds: delay)
            }
            var request = HTTPClientRequest(url: url.absoluteString)
            request.method = method
            // Content-Length is left to the client (and out of the signature): it sends none on a bodiless GET.
            let headers = extra.map { (name: $0.0, value: $0.1) }
            let signed = signer.sign(
                method: method.rawValue, url: url, headers: headers, payloadSHA256: payloadHash, date: Date())
            for header in headers + signed { request.headers.add(name: header.name, value: header.value) }
            if !body.isEmpty || method == .PUT || method == .POST {
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            // A store that refuses connections is retried by the client until the deadline: keep it short.
            let moved = max(body.count, maximumBody > 1 << 20 ? maximumBody : 0)
            do {
                let response = try await client.execute(
                    request, timeout: timeout + .seconds(Int64(moved >> 18) + extraSeconds))
                let collected = try await response.body.collect(upTo: maximumBody)
                let answer = Answer(
                    status: response.status, headers: response.headers, body: Data(collected.readableBytesView))
                unreachable = false
                if answer.status.code >= 500 || answer.status == .tooManyRequests {
                    failure = "the object store answered \(answer.status.code)"
                    continue
                }
                outage.end()
                return answer
            } catch {
                failure = "the object store cannot be reached"
                unreachable = true
                continue
            }
        }
        if unreachable { outage.begin(seconds: 3) }
        throw ArchiveError(.unavailable, failure)
    }

    func expect(_ answer: Answer, _ statuses: [HTTPResponseStatus], _ what: String) throws(ArchiveError) {
        guard statuses.contains(answer.status) else {
            if answer.status == .notFound { throw ArchiveError(.notFound, "no such blob") }
            throw ArchiveError(.io, "the object store refused to \(what) (\(answer.status.code))")
        }
    }

    // MARK: ObjectStore

    public func put(_ key: String, data: Data) async throws(ArchiveError) {
        let answer = try await send(.PUT, url(try objectKey(key)), body: data)
        try expect(answer, [.ok], "store an object")
    }

    public func put(_ key: String, file: URL) async throws(ArchiveError) {
        defer { unlink(file.path) }
        let objectKey = try objectKey(key)
        guard let handle = try? FileHandle(forReadingFrom: file) else {
            throw ArchiveError(.io, "blob cannot be read back")
        }
        defer { try? handle.close() }
        let partSize = self.partSize
        func readPart() async throws(ArchiveError) -> Data {
            try await BlockingPool.storage.runTyped { () throws(ArchiveError) in
                do {
                    return try handle.read(upToCount: partSize) ?? Data()
                } catch {
                    throw ArchiveError(.io, "blob cannot be read back")
                }
            }
        }
        let first = try await readPart()
        guard first.count == partSize else {
            try await put(key, data: first)
            return
        }
        // Multipart: create, send parts, complete; anything failing aborts the upload.
        let created = try await send(.POST, url(objectKey, query: "uploads="))
        try expect(created, [.ok], "start an upload")
        guard let uploadID = XMLValues.first("UploadId", in: created.body) else {
            throw ArchiveError(.io, "the object store did not name the upload")
        }
        let upload = "uploadId=\(Self.encodeQueryValue(uploadID))"
        do throws(ArchiveError) {
            var etags: [String] = []
            var part = first
            while !part.isEmpty {
                let number = etags.count + 1
                let answer = try await send(
                    .PUT, url(objectKey, query: "partNumber=\(number)&\(upload)"), body: part)
                try expect(answer, [.ok], "store a part")
                guard let etag = answer.headers.first(name: "etag") else {
                    throw ArchiveError(.io, "the object store did not tag a part")
                }
                etags.append(etag)
                part = try await readPart()
            }
            var xml = "<CompleteMultipartUpload>"
            for (offset, etag) in etags.enumerated() {
                xml += "<Part><PartNumber>\(offset + 1)</PartNumber><ETag>\(XMLValues.escape(etag))</ETag></Part>"
            }
            xml += "</CompleteMultipartUpload>"
            // Assembling a large object takes the store a while.
            let completed = try await send(
                .POST, url(objectKey, query: upload), body: Data(xml.utf8), extraSeconds: 120)
            // A 200 may still carry an error document (S3 sends it once the upload was being assembled).
            try expect(completed, [.ok], "complete an upload")
            guard XMLValues.first("Code", in: completed.body) == nil else {
                throw ArchiveError(.io, "the object store could not complete an upload")
            }
        } catch {
            _ = try? await send(.DELETE, url(objectKey, query: upload))
            throw error
        }
    }

    public func get(_ key: String, range: Range<Int>) async throws(ArchiveError) -> Data {
        let objectKey = try objectKey(key)
        guard range.lowerBound >= 0, !range.isEmpty else { return Data() }
        let last = range.upperBound == Int.max ? "" : String(range.upperBound - 1)
        let answer = try await send(
            .GET, url(objectKey), headers: [("range", "bytes=\(range.lowerBound)-\(last)")],
            maximumBody: max(min(range.count, Int(Int32.max)) + 1, 1 << 20))
        switch answer.status {
        case .partialContent:
            return answer.body
        case .ok:
            // A store that ignores Range sends the whole object.
            let end = min(range.upperBound, answer.body.count)
            return range.lowerBound < end ? answer.body.subdata(in: range.lowerBound..<end) : Data()
        case .rangeNotSatisfiable:
            return Data()
        case .notFound:
            throw ArchiveError(.notFound, "no such blob")
        default:
            throw ArchiveError(.io, "the object store refused to read an object (\(answer.status.code))")
        }
    }

    public func delete(_ key: String) async throws(ArchiveError) {
        let answer = try await send(.DELETE, url(try objectKey(key)))
        guard [.noContent, .ok, .notFound].contains(answer.status) else {
            throw ArchiveError(.io, "the object store refused to delete an object (\(answer.status.code))")
        }
    }

    public func exists(_ key: String) async throws(ArchiveError) -> Bool {
        guard let objectKey = try? objectKey(key) else { return false }
        let answer = try await send(.HEAD, url(objectKey))
        switch answer.status {
        case .ok: return true
        case .notFound: return false
        default: throw ArchiveError(.io, "the object store refused to look an object up (\(answer.status.code))")
        }
    }

    public func quarantine(_ key: String) async throws(ArchiveError) {
        let source = try objectKey(key)
        let target = try objectKey(key, under: "quarantine")
        // The copy's own Last-Modified starts the quarantine clock.
        let copied = try await send(
            .PUT, url(target), headers: [("x-amz-copy-source", "/\(location.bucket)/\(source)")])
        if copied.status == .notFound { return }
        try expect(copied, [.ok], "quarantine an object")
        guard XMLValues.first("Code", in: copied.body) == nil else {
            throw ArchiveError(.io, "the object store could not quarantine an object")
        }
        try await delete(key)
    }

    public func expireQuarantine(before date: Date) async throws(ArchiveError) -> Int {
        let folder = location.prefix.isEmpty ? "quarantine/" : "\(location.prefix)/quarantine/"
        var removed = 0
        var token: String?
        repeat {
            var query = "list-type=2&prefix=\(Self.encodeQueryValue(folder))"
            if let token { query = "continuation-token=\(Self.encodeQueryValue(token))&" + query }
            let listed = try await send(.GET, url(nil, query: query), maximumBody: 16 << 20)
            try expect(listed, [.ok], "list the quarantine")
            let page = XMLValues.listing(listed.body)
            for (objectKey, modified) in page.objects where modified < date {
                let answer = try await send(.DELETE, url(objectKey))
                if [.noContent, .ok].contains(answer.status) { removed += 1 }
            }
            token = page.next
        } while token != nil
        return removed
    }

    public func allKeys() async throws(ArchiveError) -> [String]? { nil }
}

/// The few values Facet reads from S3's XML answers, with Foundation's parser.
enum XMLValues {
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// Collects the text of every element named in `names`, in document order.
    final class Collector: NSObject, XMLParserDelegate {
        let names: Set<String>
        var values: [(name: String, text: String)] = []
        private var current: String?
        private var text = ""

        init(_ names: Set<String>) { self.names = names }

        func parser(
            _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            if names.contains(name) {
                current = name
                text = ""
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if current != nil { text += string }
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == current {
                values.append((name, text))
                current = nil
            }
        }
    }

    static func values(_ names: Set<String>, in data: Data) -> [(name: String, text: String)] {
        let parser = XMLParser(data: data)
        let collector = Collector(names)
        parser.delegate = collector
        parser.shouldResolveExternalEntities = false
        _ = parser.parse()
        return collector.values
    }

    static func first(_ name: String, in data: Data) -> String? {
        values([name], in: data).first?.text
    }

    /// The keys and modification dates of a ListObjectsV2 page, and the token of the next page.
    static func listing(_ data: Data) -> (objects: [(key: String, modified: Date)], next: String?) {
        var objects: [(String, Date)] = []
        var key: String?
        var next: String?
        var truncated = false
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        for (name, text) in values(["Key", "LastModified", "NextContinuationToken", "IsTruncated"], in: data) {
            switch name {
            case "Key": key = text
            case "LastModified":
                if let key, let date = formatter.date(from: text) ?? plain.date(from: text) {
                    objects.append((key, date))
                }
                key = nil
            case "NextContinuationToken": next = text
            case "IsTruncated": truncated = text == "true"
            default: break
            }
        }
        return (objects, truncated ? next : nil)
    }
}
