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
    /// `Access-Control-Allow-Origin` for browser viewers; empty disables CORS.
    public var corsAllowOrigin = "*"

    public init() {}

    /// The base URL, without a trailing slash.
    public var baseURL: String {
        var base = publicBaseURL ?? "http://\(host.contains(":") ? "[\(host)]" : host):\(port)"
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
        try settings.validate()
        return settings
    }

    public func validate() throws {
        guard (1...65535).contains(port) else { throw SettingsError(message: "port must be 1-65535") }
        guard maximumBodyMiB > 0, maximumPartMiB > 0, memoryBudgetMiB >= 0, maximumResults > 0 else {
            throw SettingsError(message: "size limits and max-results must be positive")
        }
        if let publicBaseURL, URL(string: publicBaseURL)?.scheme == nil {
            throw SettingsError(message: "public-base-url must be an absolute URL")
        }
    }
}

/// A setting that cannot be used, with the reason.
public struct SettingsError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
