import Crypto
import Foundation

/// AWS Signature Version 4 (header-based) for S3-compatible stores: SeaweedFS, Ceph RGW, MinIO and AWS S3.
///
/// This is the S3 flavour of SigV4: the canonical URI is the request path with each segment URI-encoded once
/// (no dot-segment normalisation), and the payload hash is always sent as `x-amz-content-sha256`.
/// The secret access key is used only as HMAC key material; it never appears in any output or description.
public struct SigV4Signer: Sendable {
    /// An access key pair, optionally with a session token from temporary (STS) credentials.
    public struct Credentials: Sendable, Hashable {
        /// The access key ID, sent in clear in the `Authorization` header.
        public var accessKeyID: String
        /// The secret access key; used only to derive the signing key.
        public var secretAccessKey: String
        /// The session token of temporary credentials, sent (and signed) as `x-amz-security-token`.
        public var sessionToken: String?

        /// Creates credentials from an access key pair and an optional session token.
        public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    /// The credentials requests are signed with.
    public let credentials: Credentials
    /// The region of the credential scope, e.g. `us-east-1` (most S3-compatible stores accept any fixed value).
    public let region: String
    /// The service of the credential scope: `s3` for object stores.
    public let service: String

    /// Creates a signer for one credential scope.
    public init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The lowercase hex SHA-256 of a request body, the value of `x-amz-content-sha256`.
    public static func payloadHash(_ data: some DataProtocol) -> String {
        hex(SHA256.hash(data: data))
    }

    /// The hex SHA-256 of an empty body.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// Signs a request and returns the headers to add to it: `x-amz-date`, `x-amz-content-sha256`,
    /// `x-amz-security-token` (when the credentials carry a session token) and `Authorization`.
    ///
    /// Every header in `headers` is signed, so pass exactly the headers the request will carry (names in any case).
    /// `Host` may be left out: it is then derived from `url`, with the port when it is not the scheme's default.
    /// Headers in `headers` named like one of the returned headers are ignored: the returned ones replace them.
    /// The path and query of `url` may be percent-encoded or not; `+` in the query is a literal plus, so encode a
    /// space there as `%20`.
    ///
    /// - Parameters:
    ///   - method: The HTTP method, e.g. `GET`.
    ///   - url: The full request URL.
    ///   - headers: The headers the request will carry.
    ///   - payloadSHA256: The hex SHA-256 of the body (see ``payloadHash(_:)``), or `UNSIGNED-PAYLOAD`.
    ///   - date: The signing time; the store rejects requests more than a few minutes off its clock.
    public func sign(
        method: String,
        url: URL,
        headers: [(name: String, value: String)],
        payloadSHA256: String,
        date: Date
    ) -> [(name: String, value: String)] {
        let replaced: Set<String> = ["authorization", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token"]
        var added = [(name: "x-amz-date", value: Self.timestamp(date)), ("x-amz-content-sha256", payloadSHA256)]
        if let token = credentials.sessionToken {
            added.append(("x-amz-security-token", token))
        }
        let signed = headers.filter { !replaced.contains(Self.canonicalName($0.name)) } + added
        let value = authorization(method: method, url: url, headers: signed, payloadSHA256: payloadSHA256, date: date)
        return added + [("Authorization", value)]
    }

    // MARK: - Steps (internal for tests)

    /// The `Authorization` value for a request carrying exactly `headers` (plus `Host` derived from `url` when absent).
    func authorization(
        method: String,
        url: URL,
        headers: [(name: String, value: String)],
        payloadSHA256: String,
        date: Date
    ) -> String {
        let canonical = canonicalRequest(method: method, url: url, headers: headers, payloadSHA256: payloadSHA256)
        let hmac = signature(stringToSign: stringToSign(canonicalRequest: canonical, date: date), date: date)
        let signedHeaders = Self.canonicalHeaders(url: url, headers: headers).signedHeaders
        return "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope(date)), "
            + "SignedHeaders=\(signedHeaders), Signature=\(hmac)"
    }

    /// The canonical request: method, URI, query, header block, signed header names and payload hash, one per line.
    func canonicalRequest(
        method: String,
        url: URL,
        headers: [(name: String, value: String)],
        payloadSHA256: String
    ) -> String {
        let components = URLComponents(url: url, resolvingAgainstBaseURL: true)
        let headers = Self.canonicalHeaders(url: url, headers: headers)
        return [
            method,
            Self.canonicalURI(percentEncodedPath: components?.percentEncodedPath ?? ""),
            Self.canonicalQuery(percentEncodedQuery: components?.percentEncodedQuery ?? ""),
            headers.block,
            headers.signedHeaders,
            payloadSHA256,
        ].joined(separator: "\n")
    }

    /// The string to sign: algorithm, timestamp, credential scope and the hex SHA-256 of the canonical request.
    func stringToSign(canonicalRequest: String, date: Date) -> String {
        let hash = Self.payloadHash(Data(canonicalRequest.utf8))
        return [Self.algorithm, Self.timestamp(date), scope(date), hash].joined(separator: "\n")
    }

    /// The lowercase hex HMAC-SHA256 of `stringToSign` under the signing key for `date`.
    func signature(stringToSign: String, date: Date) -> String {
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [String(Self.timestamp(date).prefix(8)), region, service, "aws4_request"] {
            key = SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key))
        }
        return Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
    }

    /// The credential scope, `yyyyMMdd/region/service/aws4_request`.
    func scope(_ date: Date) -> String {
        "\(Self.timestamp(date).prefix(8))/\(region)/\(service)/aws4_request"
    }

    static let algorithm = "AWS4-HMAC-SHA256"

    /// `date` in UTC as `yyyyMMdd'T'HHmmss'Z'`, computed by hand (no shared formatter, no locale).
    static func timestamp(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let (days, secondOfDay) = seconds.quotientAndRemainder(dividingBy: 86_400)
        let (day, second) = secondOfDay < 0 ? (days - 1, secondOfDay + 86_400) : (days, secondOfDay)
        // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
        let shifted = day + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let dayOfMonth = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let date = [(year, 4), (month, 2), (dayOfMonth, 2)].map { zeroPadded(String($0.0), $0.1) }
        let time = [second / 3600, second / 60 % 60, second % 60].map { zeroPadded(String($0), 2) }
        return date.joined() + "T" + time.joined() + "Z"
    }

    /// The URI path, each segment decoded then URI-encoded once; `/` separators kept, no dot-segment removal.
    static func canonicalURI(percentEncodedPath path: String) -> String {
        guard !path.isEmpty else { return "/" }
        return path.split(separator: "/", omittingEmptySubsequences: false)
            .map { uriEncode($0.removingPercentEncoding ?? String($0)) }
            .joined(separator: "/")
    }

    /// The query, each name and value decoded then URI-encoded, sorted by name then value; `name=` when no value.
    static func canonicalQuery(percentEncodedQuery query: String) -> String {
        let pairs = query.split(separator: "&").map { parameter in
            let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                .map { uriEncode($0.removingPercentEncoding ?? String($0)) }
            return (name: parts.first ?? "", value: parts.dropFirst().first ?? "")
        }
        return pairs.sorted { lhs, rhs in
            lhs.name == rhs.name
                ? lhs.value.utf8.lexicographicallyPrecedes(rhs.value.utf8)
                : lhs.name.utf8.lexicographicallyPrecedes(rhs.name.utf8)
        }
        .map { "\($0.name)=\($0.value)" }
        .joined(separator: "&")
    }

    /// The canonical header block (`name:value\n` per name, sorted) and the signed header list (`a;b;c`).
    /// `host` is derived from `url` when `headers` has none.
    static func canonicalHeaders(
        url: URL,
        headers: [(name: String, value: String)]
    ) -> (block: String, signedHeaders: String) {
        var values: [String: [String]] = [:]
        for header in headers {
            values[canonicalName(header.name), default: []].append(
                header.value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " "))
        }
        if values["host"] == nil, let host = host(of: url) {
            values["host"] = [host]
        }
        let sorted = values.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        let block = sorted.map { "\($0.key):\($0.value.joined(separator: ","))\n" }.joined()
        return (block, sorted.map(\.key).joined(separator: ";"))
    }

    /// The `Host` header a client sends for `url`: the host, plus `:port` unless it is the scheme's default.
    static func host(of url: URL) -> String? {
        guard let components = URLComponents(url: url, resolvingAgainstBaseURL: true),
            let host = components.percentEncodedHost, !host.isEmpty
        else { return nil }
        let defaultPort = ["http": 80, "https": 443][components.scheme?.lowercased() ?? ""]
        guard let port = components.port, port != defaultPort else { return host }
        return "\(host):\(port)"
    }

    static func canonicalName(_ name: String) -> String {
        name.trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// RFC 3986 encoding of the UTF-8 bytes: `A-Z a-z 0-9 - _ . ~` kept, everything else `%XX` (uppercase hex).
    static func uriEncode(_ string: String) -> String {
        var encoded = ""
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                encoded += "%" + zeroPadded(String(byte, radix: 16, uppercase: true), 2)
            }
        }
        return encoded
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { zeroPadded(String($0, radix: 16), 2) }.joined()
    }

    private static func zeroPadded(_ digits: String, _ width: Int) -> String {
        String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

extension SigV4Signer.Credentials: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// A description that names the access key ID and redacts the secret and the session token.
    public var description: String {
        "Credentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>, "
            + "sessionToken: \(sessionToken == nil ? "nil" : "<redacted>"))"
    }

    /// Same as ``description``: the secret is never printed.
    public var debugDescription: String { description }

    /// A mirror without the secret, so `dump` and reflection do not reveal it either.
    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyID": accessKeyID, "hasSessionToken": sessionToken != nil])
    }
}
