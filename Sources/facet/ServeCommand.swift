import Archive
import ArchiveServer
import ArgumentParser
import DICOMCodec
import Foundation
import Hummingbird
import Logging

#if canImport(Glibc)
    /// glibc's `mallopt` (malloc.h is not part of the Glibc module).
    @_silgen_name("mallopt") func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// `facet serve`: the archive with its DICOMweb face.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the archive: DICOMweb under /dicomweb, uploads under /api/v1, health and metrics.",
        discussion: """
            Settings come from the options, then the environment (FACET_DATA_DIR, FACET_HOST, FACET_PORT, \
            FACET_PUBLIC_BASE_URL, FACET_DUPLICATES, FACET_MAX_BODY_MIB, FACET_MAX_PART_MIB, \
            FACET_MEMORY_BUDGET_MIB, FACET_MAX_RESULTS, FACET_CORS_ALLOW_ORIGIN, FACET_ALLOWED_HOSTS, \
            FACET_BLOCKING_THREADS, FACET_BLOCKING_QUEUE, FACET_QUARANTINE_DAYS, FACET_TLS_CERT, FACET_TLS_KEY, \
            FACET_TLS_MIN_VERSION, FACET_OIDC_ISSUER, FACET_OIDC_AUDIENCE, FACET_OIDC_JWKS, FACET_OIDC_ROLE_CLAIM, \
            FACET_OIDC_TENANT_CLAIM, FACET_OIDC_TENANTS), then --config FILE (YAML, see \
            config/facet.example.yaml). The master key is read from FACET_MASTER_KEY, or the file \
            master-key-file (FACET_MASTER_KEY_FILE) names (keep it on other media than the data), or \
            DATA/keys/master.key (created on first start, with a warning to back it up); the start-up log says which.
            """)

    @Option(name: .customLong("data-dir"), help: "Data folder (default ./facet-data).") var dataDirectory: String?
    @Option(help: "Address to listen on (default 127.0.0.1).") var host: String?
    @Option(help: "Port (default 8042).") var port: Int?
    @Option(help: "YAML configuration file.") var config: String?
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: serve HTTPS (TLS 1.3).") var tlsCertificate:
        String?
    @Option(name: .customLong("tls-key"), help: "PEM private key of the certificate.") var tlsKey: String?
    @Flag(help: "Load the synthetic demo clinic when the archive is empty.") var demo = false

    func run() async throws {
        #if canImport(Glibc)
            // Instances of a few MB are read, decrypted and sent per request: keep such buffers in the heap for reuse
            // instead of a fresh mmap (and its page faults) each time, in at most two arenas so that memory freed by
            // one request serves the next (glibc: M_MMAP_THRESHOLD = -3, M_TRIM_THRESHOLD = -1, M_ARENA_MAX = -8).
            _ = glibcMallopt(-8, 2)
            _ = glibcMallopt(-3, 16 << 20)
            _ = glibcMallopt(-1, 64 << 20)
        #endif
        var settings: ServerSettings
        do {
            settings = try await ServerSettings.load(configFile: config)
        } catch let error as SettingsError {
            throw fail(error.message, code: 2)
        } catch {
            throw fail("configuration cannot be read: \(error)", code: 2)
        }
        if let dataDirectory { settings.dataDirectory = dataDirectory }
        if let host { settings.host = host }
        if let port { settings.port = port }
        if let tlsCertificate { settings.tlsCertificate = tlsCertificate }
        if let tlsKey { settings.tlsKey = tlsKey }
        do { try settings.validate() } catch { throw fail("\(error)", code: 2) }
        guard ServerSettings.isLoopback(settings.host) || settings.usesTLS || settings.trustProxyTLS else {
            // Tokens and PHI must not cross the network in the clear.
            throw fail(
                "refusing to listen on \(settings.host) without TLS: give --tls-cert and --tls-key, or set trust-proxy-tls: true when a TLS-terminating proxy is in front (loopback addresses need neither)",
                code: 2)
        }
        try initializeDCMTK()
        // Every opener of the keys (each clinic's archive, the account store) reads it from the environment.
        if let file = settings.masterKeyFile, !file.isEmpty { setenv("FACET_MASTER_KEY_FILE", file, 1) }

        let service: ArchiveService
        let report: ArchiveService.StartReport
        do throws(ArchiveError) {
            let folder = URL(fileURLWithPath: settings.dataDirectory)
            var database: PostgresDatabase?
            if let location = settings.postgres { database = try await PostgresDatabase.open(location) }
            (service, report) = try await ArchiveService.openEmbedded(
                dataDirectory: folder,
                objects: try settings.objectStore(tenant: "default", primary: true, dataDirectory: folder),
                database: database,
                duplicatePolicy: settings.duplicatePolicy, quarantineDays: settings.quarantineDays)
        } catch {
            throw fail("the archive cannot be opened: \(error.message)", code: 3)
        }
        var logger = Logger(label: "facet")
        logger.logLevel = .info
        if report.createdMasterKey {
            logger.warning(
                "generated a new master key: back it up apart from the data (facet keys backup), or the archive cannot be read"
            )
        }
        logger.notice(
            "\(MasterKeyLocation.describe(dataDirectory: URL(fileURLWithPath: settings.dataDirectory)))")
        for reminder in KeyRotation.reminders(dataDirectory: URL(fileURLWithPath: settings.dataDirectory)) {
            logger.warning("\(reminder)")
        }
        if report.removedTemporaryFiles > 0 || report.quarantinedBlobs > 0 || report.expiredQuarantinedBlobs > 0 {
            logger.notice(
                "cleaned up after an interrupted run: unacknowledged blobs quarantined",
                metadata: [
                    "temporary-files": "\(report.removedTemporaryFiles)",
                    "quarantined-blobs": "\(report.quarantinedBlobs)",
                    "expired-quarantine-removed": "\(report.expiredQuarantinedBlobs)",
                ])
        }
        if !report.quarantinedRows.isEmpty {
            // UIDs only (never PHI): these rows could not be decoded and are left out of the archive until repaired.
            logger.error(
                "index rows that cannot be decoded were set aside; their instances are not served",
                metadata: ["uids": "\(report.quarantinedRows.joined(separator: ","))"])
        }
        let dataFolder = URL(fileURLWithPath: settings.dataDirectory)
        // Demo accounts alone (synthetic data, loopback only) may log in without TOTP.
        let demoLogins = demo && ServerSettings.isLoopback(settings.host)
        var tokenSettings = TokenService.Settings()
        tokenSettings.idleTimeout = TimeInterval(settings.sessionIdleMinutes * 60)
        tokenSettings.lifetime = TimeInterval(settings.sessionMaxHours * 3600)
        var loginSettings = LoginService.Settings()
        loginSettings.allowTOTPExemptAccounts = demoLogins
        var identity: IdentityServices
        do throws(ArchiveError) {
            if let database = (service.index as? PostgresStudyIndex)?.database {
                identity = try await IdentityServices.open(
                    database: database, dataDirectory: dataFolder, keys: service.keys, tokenSettings: tokenSettings,
                    loginSettings: loginSettings)
            } else {
                identity = try IdentityServices.open(
                    dataDirectory: dataFolder, keys: service.keys, tokenSettings: tokenSettings,
                    loginSettings: loginSettings)
            }
        } catch {
            throw fail("the accounts cannot be opened: \(error.message)", code: 3)
        }
        identity.identityProvider = try Self.identityProvider(settings, store: identity.store, logger: logger)
        if demo && report.instances == 0 {
            do {
                let count = try await DemoClinic.load(into: service)
                logger.info("loaded the synthetic demo clinic", metadata: ["instances": "\(count)"])
                if demoLogins {
                    let banner = try await DemoClinic.createAccounts(
                        identity, folder: dataFolder, baseURL: settings.baseURL)
                    FileHandle.standardOutput.write(Data(banner.utf8))
                }
            } catch {
                throw fail("the demo clinic could not be loaded: \(error)", code: 3)
            }
        }
        let app = try await Self.application(settings: settings, service: service, identity: identity, logger: logger)
        // Written unbuffered: `make serve` piped into a log shows the URL at once.
        FileHandle.standardOutput.write(
            Data("Facet \(Facet.version) is serving DICOMweb at \(settings.baseURL)/dicomweb (Ctrl-C stops it)\n".utf8))
        try await app.runService()
        // Graceful shutdown: pending audit events to disk.
        await service.audit.flush()
    }

    /// The verifier of the identity provider's tokens with its key set loaded, nil when none is configured, or one
    /// readable line and exit code 2.
    static func identityProvider(_ settings: ServerSettings, store: any AccountStore, logger: Logger) throws
        -> OIDCTokenVerifier?
    {
        let provider: OIDCTokenVerifier.Settings
        do {
            guard let configured = try settings.identityProvider() else { return nil }
            provider = configured
        } catch {
            throw fail("\(error)", code: 2)
        }
        let verifier: OIDCTokenVerifier
        do {
            verifier = try OIDCTokenVerifier(settings: provider, store: store) { outcome in
                switch outcome {
                case .success(let count):
                    logger.notice("fetched the identity provider's keys again", metadata: ["keys": "\(count)"])
                case .failure(let error):
                    logger.warning(
                        "the identity provider's keys could not be fetched again; the previous keys stay in use",
                        metadata: ["reason": "\(error.message)"])
                }
            }
        } catch {
            throw fail("the identity provider's keys (oidc-jwks) cannot be used: \(error.message)", code: 2)
        }
        logger.info(
            "accepting tokens of the identity provider",
            metadata: ["issuer": "\(provider.issuer)", "keys": "\(verifier.keyCount)"])
        return verifier
    }

    /// The server, or one readable line and exit code 2 (an unreadable certificate, say).
    static func application(
        settings: ServerSettings, service: ArchiveService, identity: IdentityServices, logger: Logger
    ) async throws -> some ApplicationProtocol {
        do {
            return try await buildApplication(settings: settings, service: service, identity: identity, logger: logger)
        } catch {
            throw fail("\(error)", code: 2)
        }
    }
}
