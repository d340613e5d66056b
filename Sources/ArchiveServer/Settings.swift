import Archive
import Configuration
import Foundation
import SystemPackage

/// Everything `facet serve` can be told. Each setting comes from (highest first) the command line, the
/// environment (`FACET_PORT`, `FACET_DATA_DIR`, ...), the YAML config file (`facet:` section, see
/// `config/facet.example.yaml`), then the default.
public struct ServerSettings: Sendable {
    public var dataDirectory = "./facet-data"
    public var host = "127.0.0.1"
    public var port = 8042
    /// The base URL clients reach Facet at (behind a reverse proxy it differs from host:port); RetrieveURL,
    /// BulkDataURI and Content-Location use it. Default `http://host:port`.
    public var publicBaseURL: String?
    public var duplicatePolicy = DuplicatePolicy.reject
    public var maximumBodyMiB = 4096
    public var maximumPartMiB = 1024
    /// Part content one request may hold in memory before it is spooled (encrypted) to disk.
    public var memoryBudgetMiB = 32
    /// The most results one QIDO-RS response carries; more are announced with a Warning header.
    public var maximumResults = 1000
    /// Origins (`scheme://host[:port]`, comma-separated, or `*`) whose browser pages may call Facet: they get
    /// CORS headers and may send state-changing requests. Empty (the default): CORS off, and a POST carrying a
    /// foreign `Origin` is refused.
    public var corsAllowOrigin = ""
    /// Host names (and addresses) requests may name in `Host`; others get 421 (DNS rebinding). Empty: the bound
    /// address, `localhost` and the public base URL's host.
    public var allowedHosts: [String] = []
    /// Threads of the pool that runs blocking work (DCMTK, crypto, fsync), and how many jobs may wait for one
    /// before requests are answered 503 with `Retry-After`.
    public var blockingThreads = max(4, 2 * ProcessInfo.processInfo.activeProcessorCount)
    public var blockingQueue = 64
    /// Days an unacknowledged blob of an interrupted store stays in DATA/quarantine before removal.
    public var quarantineDays = 7
    /// The practice's name, drawn as the visible watermark on every photo that leaves (exports, share links) and
    /// coded into the invisible one.
    public var practiceName = "Facet clinic"
    /// The window of the per-address login limit (20 attempts). Not a setting: tests on a busy machine lengthen it,
    /// so that slow password hashing does not let the window pass before the limit is reached.
    var loginAttemptWindow: TimeInterval = 60
    /// Webhooks (issue 12 §5): the receiver's URL (https, or http on a loopback host), the HMAC-SHA256 secret (at
    /// least 16 characters), the events sent (comma-separated; all when empty), the first retry's delay in seconds.
    public var webhookURL: String?
    public var webhookSecret: String?
    public var webhookEvents = ""
    public var webhookRetrySeconds = 10
    /// Audit forwarding to a syslog collector over TLS (RFC 5425): `tls://host[:6514]` (a host name, checked against
    /// the collector's certificate), and the CA certificate (PEM) that signed it (default: the system's).
    public var syslogURL: String?
    public var syslogCA: String?
    /// The master key's file outside the data folder (`master-key-file`, FACET_MASTER_KEY_FILE).
    public var masterKeyFile: String?
    /// Where blobs are kept: nil for the data folder, or `s3://bucket/prefix` on an S3-compatible store at
    /// `s3Endpoint` (default AWS in `s3Region`), credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    public var blobs: String?
    public var s3Endpoint: String?
    public var s3Region: String?
    /// `blobs` parsed (with the credentials of the environment `load` read), nil for the data folder.
    public var s3: S3Location?
    /// Where the index is: nil for `DATA/index.sqlite`, or `postgres://user:password@host:port/database`.
    public var index: String?
    /// `index` parsed, nil for the embedded SQLite file.
    public var postgres: PostgresDatabase.Location?
    /// PEM certificate chain and private key: with both, Facet speaks HTTPS only (TLS 1.3 unless `tlsMinimumVersion`
    /// is "1.2") and sends HSTS.
    public var tlsCertificate: String?
    public var tlsKey: String?
    public var tlsMinimumVersion = "1.3"

    /// A TLS-terminating proxy is in front: a non-loopback plaintext bind is then allowed, and `X-Forwarded-For`
    /// is believed from the addresses in `trustedProxies`.
    public var trustProxyTLS = false
    public var trustedProxies: [String] = []
    /// Sessions: a token unused this long stops working; none lives longer than `sessionMaxHours`.
    public var sessionIdleMinutes = 15
    public var sessionMaxHours = 12
    /// A scrape token for `/metrics` (otherwise an admin's token is needed).
    public var metricsToken: String?
    /// The clinic's own OpenID Connect identity provider, whose tokens Facet also accepts: its issuer (`iss`),
    /// the audience its tokens name Facet by, and its key set (a file, or an https:// URL). All three or none.
    public var oidcIssuer: String?
    public var oidcAudience: String?
    public var oidcJWKS: String?
    /// The claims naming a provider token's role (default `role`) and tenant (none: every principal in "default").
    public var oidcRoleClaim = "role"
    public var oidcTenantClaim: String?
    /// The tenants the identity provider may name in `oidc-tenant-claim` (comma-separated); required with it.
    public var oidcTenants: [String] = []

    /// Whether Facet serves HTTPS itself.
    public var usesTLS: Bool { tlsCertificate != nil && tlsKey != nil }

    public init() {}

    /// The base URL, without a trailing slash.
    public var baseURL: String {
        var base = publicBaseURL ?? "\(usesTLS ? "https" : "http")://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    /// Reads settings from the environment and the optional YAML file.
    public static func load(configFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        async throws -> ServerSettings
    {
        var providers: [any ConfigProvider] = [EnvironmentVariablesProvider(environmentVariables: environment)]
        if let configFile {
            providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(configFile)))
        }
        let config = ConfigReader(providers: providers).scoped(to: "facet")
        var settings = ServerSettings()
        settings.dataDirectory = config.string(forKey: "data-dir", default: settings.dataDirectory)
        settings.host = config.string(forKey: "host", default: settings.host)
        settings.port = config.int(forKey: "port", default: settings.port)
        settings.publicBaseURL = config.string(forKey: "public-base-url")
        let policy = config.string(forKey: "duplicates", default: settings.duplicatePolicy.rawValue)
        guard let duplicatePolicy = DuplicatePolicy(rawValue: policy) else {
            throw SettingsError(message: "duplicates must be 'reject' or 'new-version'")
        }
        settings.duplicatePolicy = duplicatePolicy
        settings.maximumBodyMiB = config.int(forKey: "max-body-mib", default: settings.maximumBodyMiB)
        settings.maximumPartMiB = config.int(forKey: "max-part-mib", default: settings.maximumPartMiB)
        settings.memoryBudgetMiB = config.int(forKey: "memory-budget-mib", default: settings.memoryBudgetMiB)
        settings.maximumResults = config.int(forKey: "max-results", default: settings.maximumResults)
        settings.corsAllowOrigin = config.string(forKey: "cors-allow-origin", default: settings.corsAllowOrigin)
        settings.allowedHosts = config.string(forKey: "allowed-hosts", default: "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        settings.blockingThreads = config.int(forKey: "blocking-threads", default: settings.blockingThreads)
        settings.blockingQueue = config.int(forKey: "blocking-queue", default: settings.blockingQueue)
        settings.quarantineDays = config.int(forKey: "quarantine-days", default: settings.quarantineDays)
        settings.practiceName = config.string(forKey: "practice-name", default: settings.practiceName)
        settings.blobs = config.string(forKey: "blobs")
        settings.s3Endpoint = config.string(forKey: "s3-endpoint")
        settings.s3Region = config.string(forKey: "s3-region")
        settings.index = config.string(forKey: "index")
        if let index = settings.index, !index.isEmpty {
            do {
                settings.postgres = try PostgresDatabase.Location.parse(index)
            } catch {
                throw SettingsError(message: "index: \(error.message)")
            }
        }
        if let blobs = settings.blobs, !blobs.isEmpty {
            do {
                settings.s3 = try S3Location.parse(
                    blobs, endpoint: settings.s3Endpoint, region: settings.s3Region, environment: environment)
            } catch {
                throw SettingsError(message: "blobs: \(error.message)")
            }
        }
        settings.tlsCertificate = config.string(forKey: "tls-cert")
        settings.tlsKey = config.string(forKey: "tls-key")
        settings.tlsMinimumVersion = config.string(forKey: "tls-min-version", default: settings.tlsMinimumVersion)
        settings.trustProxyTLS = config.bool(forKey: "trust-proxy-tls", default: settings.trustProxyTLS)
        settings.trustedProxies = config.string(forKey: "trusted-proxies", default: "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        settings.sessionIdleMinutes = config.int(forKey: "session-idle-minutes", default: settings.sessionIdleMinutes)
        settings.sessionMaxHours = config.int(forKey: "session-max-hours", default: settings.sessionMaxHours)
        settings.metricsToken = config.string(forKey: "metrics-token")
        settings.webhookURL = config.string(forKey: "webhook-url")
        settings.syslogURL = config.string(forKey: "syslog-url")
        settings.syslogCA = config.string(forKey: "syslog-ca")
        settings.masterKeyFile = config.string(forKey: "master-key-file")
        settings.webhookSecret = config.string(forKey: "webhook-secret")
        settings.webhookEvents = config.string(forKey: "webhook-events", default: settings.webhookEvents)
        settings.webhookRetrySeconds = config.int(
            forKey: "webhook-retry-seconds", default: settings.webhookRetrySeconds)
        settings.oidcIssuer = config.string(forKey: "oidc-issuer")
        settings.oidcAudience = config.string(forKey: "oidc-audience")
        settings.oidcJWKS = config.string(forKey: "oidc-jwks")
        settings.oidcRoleClaim = config.string(forKey: "oidc-role-claim", default: settings.oidcRoleClaim)
        settings.oidcTenantClaim = config.string(forKey: "oidc-tenant-claim")
        settings.oidcTenants = (config.string(forKey: "oidc-tenants") ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        try settings.validate()
        return settings
    }

    public func validate() throws {
        if let blobs, !blobs.isEmpty, s3 == nil {
            throw SettingsError(message: "blobs is set but was not parsed (use ServerSettings.load)")
        }
        guard (1...65535).contains(port) else { throw SettingsError(message: "port must be 1-65535") }
        guard maximumBodyMiB > 0, maximumPartMiB > 0, memoryBudgetMiB >= 0, maximumResults > 0 else {
            throw SettingsError(message: "size limits and max-results must be positive")
        }
        if let publicBaseURL, URL(string: publicBaseURL)?.scheme == nil || URL(string: publicBaseURL)?.host == nil {
            throw SettingsError(message: "public-base-url must be an absolute URL")
        }
        guard (1...80).contains(practiceName.count),
            !practiceName.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) })
        else { throw SettingsError(message: "practice-name must be 1 to 80 characters of text") }
        guard blockingThreads >= 1, blockingThreads <= 256, blockingQueue >= 1, quarantineDays >= 0 else {
            throw SettingsError(
                message: "blocking-threads (1-256), blocking-queue (1+) and quarantine-days (0+) are out of range")
        }
        guard (1...1440).contains(sessionIdleMinutes), (1...168).contains(sessionMaxHours) else {
            throw SettingsError(message: "session-idle-minutes is 1-1440 and session-max-hours 1-168")
        }
        if let metricsToken, metricsToken.utf8.count < 32 {
            throw SettingsError(message: "metrics-token must be at least 32 characters")
        }
        guard (tlsCertificate == nil) == (tlsKey == nil) else {
            throw SettingsError(message: "tls-cert and tls-key go together")
        }
        guard tlsMinimumVersion == "1.3" || tlsMinimumVersion == "1.2" else {
            throw SettingsError(message: "tls-min-version is 1.3 (the default) or 1.2")
        }
        _ = try identityProvider()
        _ = try webhooks()
        _ = try syslog()
        for origin in corsOrigins where origin != "*" {
            guard let url = URL(string: origin), url.scheme != nil, url.host != nil, url.path.isEmpty else {
                throw SettingsError(
                    message: "cors-allow-origin takes origins such as https://viewer.example:3000, or *")
            }
        }
    }

    /// The syslog collector (host, port), nil when audit forwarding is off.
    public func syslog() throws -> (host: String, port: Int)? {
        guard let syslogURL, !syslogURL.isEmpty else { return nil }
        guard let url = URL(string: syslogURL), url.scheme?.lowercased() == "tls", let host = url.host, !host.isEmpty,
            url.path.isEmpty || url.path == "/"
        else { throw SettingsError(message: "syslog-url must be tls://host[:port] (RFC 5425)") }
        // The collector's certificate is checked against its name: an address cannot be checked, so it is refused.
        guard !host.contains(":"), !host.allSatisfy({ $0.isNumber || $0 == "." }) else {
            throw SettingsError(message: "syslog-url must name the collector by host name, not address")
        }
        if let syslogCA, !FileManager.default.isReadableFile(atPath: syslogCA) {
            throw SettingsError(message: "syslog-ca cannot be read")
        }
        return (host, url.port ?? 6514)
    }

    /// The webhook settings, nil when no receiver is configured.
    public func webhooks() throws -> Webhooks.Settings? {
        guard let webhookURL, !webhookURL.isEmpty else { return nil }
        guard let url = URL(string: webhookURL), let scheme = url.scheme?.lowercased(), let host = url.host,
            scheme == "https" || (scheme == "http" && ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host))
        else { throw SettingsError(message: "webhook-url must be an https URL (http only on a loopback host)") }
        guard let webhookSecret, webhookSecret.utf8.count >= 16 else {
            throw SettingsError(message: "webhook-secret must be at least 16 characters")
        }
        let names = webhookEvents.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
            !$0.isEmpty
        }
        if let unknown = names.first(where: { !Webhooks.events.contains($0) }) {
            throw SettingsError(
                message:
                    "webhook-events: \(unknown.prefix(40)) is not an event; events: \(Webhooks.events.sorted().joined(separator: ", "))"
            )
        }
        guard (1...3600).contains(webhookRetrySeconds) else {
            throw SettingsError(message: "webhook-retry-seconds is 1-3600")
        }
        return Webhooks.Settings(
            url: url, secret: Data(webhookSecret.utf8), events: names.isEmpty ? Webhooks.events : Set(names),
            retrySeconds: Double(webhookRetrySeconds))
    }

    /// The identity provider's settings, or nil when none is configured; a `SettingsError` for an incomplete or
    /// unusable configuration (the key set itself is read when the server starts).
    public func identityProvider() throws -> OIDCTokenVerifier.Settings? {
        guard oidcIssuer != nil || oidcAudience != nil || oidcJWKS != nil || oidcTenantClaim != nil else { return nil }
        guard let oidcIssuer, let oidcAudience, let oidcJWKS else {
            throw SettingsError(message: "oidc-issuer, oidc-audience and oidc-jwks go together: all three or none")
        }
        guard !oidcIssuer.isEmpty, !oidcAudience.isEmpty, !oidcRoleClaim.isEmpty, oidcTenantClaim?.isEmpty != true
        else {
            throw SettingsError(
                message: "oidc-issuer, oidc-audience, oidc-role-claim and oidc-tenant-claim cannot be empty")
        }
        guard oidcTenantClaim == nil || (!oidcTenants.isEmpty && oidcTenants.allSatisfy(Account.isValidTenant)) else {
            throw SettingsError(
                message:
                    "oidc-tenant-claim needs oidc-tenants: the clinics (tenant names) this identity provider may name")
        }
        guard oidcIssuer != TokenService.Settings().issuer else {
            throw SettingsError(message: "oidc-issuer must differ from Facet's own issuer (\(oidcIssuer))")
        }
        do {
            return OIDCTokenVerifier.Settings(
                issuer: oidcIssuer, audience: oidcAudience, keySet: try JSONWebKeySetSource(oidcJWKS),
                roleClaim: oidcRoleClaim, tenantClaim: oidcTenantClaim, tenants: Set(oidcTenants),
                maximumLifetime: TimeInterval(sessionMaxHours) * 3600)
        } catch {
            throw SettingsError(message: error.message)
        }
    }

    /// The configured CORS origins, normalised (lower case, no trailing slash).
    public var corsOrigins: [String] {
        corsAllowOrigin.split(separator: ",").map {
            var origin = $0.trimmingCharacters(in: .whitespaces).lowercased()
            while origin.hasSuffix("/") { origin.removeLast() }
            return origin
        }.filter { !$0.isEmpty }
    }

    /// Host names a request's `Host` may carry (lower case, without port or brackets).
    public var acceptedHosts: Set<String> {
        if !allowedHosts.isEmpty { return Set(allowedHosts.map { Self.bareHost($0) }) }
        var hosts: Set<String> = [Self.bareHost(host), "localhost"]
        if let publicBaseURL, let name = URL(string: publicBaseURL)?.host { hosts.insert(Self.bareHost(name)) }
        return hosts
    }

    /// `Host` header value → host name: lower case, port and IPv6 brackets removed.
    public static func bareHost(_ value: String) -> String {
        var text = value.trimmingCharacters(in: .whitespaces).lowercased()
        if text.hasPrefix("[") {
            if let close = text.firstIndex(of: "]") { text = String(text[text.index(after: text.startIndex)..<close]) }
            return text
        }
        // One colon: host:port. More: a bare IPv6 address.
        if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            text = String(text[..<colon])
        }
        while text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// Whether `host` is a loopback address or name (the only binding allowed until Facet authenticates).
    public static func isLoopback(_ host: String) -> Bool {
        LoopbackHost.contains(bareHost(host))
    }
}

/// A setting that cannot be used, with the reason.
public struct SettingsError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension ServerSettings {
    /// The object store of a clinic's blobs: nil for its data folder; on S3 the primary tenant's keys live under the
    /// configured prefix and every other clinic's under `tenants/NAME` below it.
    public func objectStore(tenant: String, primary: Bool, dataDirectory: URL) throws(ArchiveError) -> (
        any ObjectStore
    )? {
        guard let s3 else { return nil }
        return try S3ObjectStore(
            location: primary ? s3 : s3.appending("tenants/\(tenant)"),
            scratchFolder: dataDirectory.appendingPathComponent("tmp"))
    }
}
