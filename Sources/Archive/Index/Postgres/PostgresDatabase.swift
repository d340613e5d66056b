import Foundation
import Logging
import NIOSSL
import PostgresNIO

/// A PostgreSQL server Facet keeps its index in: one pooled client for the process (every clinic's index shares
/// it), run for as long as the process lives, and the schema migrated to the newest version at open.
public final class PostgresDatabase: Sendable {
    let client: PostgresClient
    let logger: Logger
    private let running: Task<Void, Never>

    /// Where the server is and who Facet is there, from `postgres://user:password@host:port/database` (also
    /// `postgresql://`; `?sslmode=disable|prefer|require`, default `prefer`; a `host` query item naming a folder
    /// connects through its Unix socket). The password never appears in errors.
    public struct Location: Sendable, Hashable {
        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        public var database: String
        public var socketFolder: String?
        public var sslMode: String

        public static func parse(_ text: String) throws(ArchiveError) -> Location {
            guard let url = URLComponents(string: text), url.scheme == "postgres" || url.scheme == "postgresql",
                let username = url.user, !username.isEmpty
            else { throw ArchiveError(.invalidInput, "index must be postgres://user:password@host:port/database") }
            let database = String(url.path.drop { $0 == "/" })
            guard !database.isEmpty, !database.contains("/") else {
                throw ArchiveError(.invalidInput, "the index URL names no database (postgres://…/database)")
            }
            let items = Dictionary(
                (url.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
            let sslMode = items["sslmode"] ?? "prefer"
            guard ["disable", "prefer", "require"].contains(sslMode) else {
                throw ArchiveError(.invalidInput, "sslmode must be disable, prefer or require")
            }
            let socket = items["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            guard socket != nil || !(url.host ?? "").isEmpty else {
                throw ArchiveError(.invalidInput, "the index URL names no host")
            }
            return Location(
                host: url.host ?? "", port: url.port ?? 5432, username: username, password: url.password,
                database: database, socketFolder: socket, sslMode: sslMode)
        }
    }

    public let location: Location
    /// How long one index operation may wait for the server (connecting included) before it is `.unavailable`.
    public let deadline: Double
    /// Once the server could not be reached, calls fail at once for a moment (one call at a time tries again), so
    /// that a request answers 503 quickly instead of waiting out a deadline for every call it makes.
    let outage = OutageBreaker(pause: 2)

    /// Runs database work under the deadline (`seconds`, default `deadline`), failing fast while the server is away.
    func call<T: Sendable>(seconds: Double? = nil, _ body: @escaping @Sendable () async throws -> T)
        async throws(ArchiveError) -> T
    {
        let limit = seconds ?? deadline
        switch outage.admit(now: Date()) {
        case .refuse:
            throw ArchiveError(.unavailable, "the index database is not available")
        case .probe:
            // The first call after the pause finds out whether the server is back, without holding the others (a
            // call given a long deadline of its own, a migration or a start-up load, keeps it).
            return try await Self.mapping(
                seconds: seconds == nil ? min(limit, 5) : limit, breaker: outage, probe: true, body)
        case .pass:
            return try await Self.mapping(seconds: limit, breaker: outage, body)
        }
    }

    /// Connects (lazily: the pool connects on first use), migrates the schema, and checks the server answers.
    public static func open(
        _ location: Location, deadline: Double = 15, logger: Logger = Logger(label: "facet.postgres")
    ) async throws(ArchiveError) -> PostgresDatabase {
        let database = try PostgresDatabase(location, deadline: deadline, logger: logger)
        do {
            try await database.migrate()
        } catch {
            database.close()
            throw error
        }
        return database
    }

    private init(_ location: Location, deadline: Double, logger: Logger) throws(ArchiveError) {
        self.location = location
        self.deadline = deadline
        self.logger = logger
        var configuration: PostgresClient.Configuration
        if let folder = location.socketFolder {
            configuration = .init(
                unixSocketPath: "\(folder)/.s.PGSQL.\(location.port)", username: location.username,
                password: location.password, database: location.database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch location.sslMode {
            case "disable": tls = .disable
            case "require": tls = .require(.makeClientConfiguration())
            default: tls = .prefer(.makeClientConfiguration())
            }
            configuration = .init(
                host: location.host, port: location.port, username: location.username, password: location.password,
                database: location.database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(5)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        running = Task { await client.run() }
    }

    /// Runs one statement as written (administration and tests: never with values from a request).
    func execute(unsafeSQL sql: String) async throws(ArchiveError) {
        let (client, logger) = (self.client, self.logger)
        try await call {
            try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        }
    }

    /// Stops the pool (its connections close).
    public func close() { running.cancel() }

    /// Applies the migrations not yet recorded, in order, each in a transaction under one advisory lock.
    func migrate() async throws(ArchiveError) {
        try await call { [self] in
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(7245001)", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS facet_migrations (
                        version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TIMESTAMPTZ NOT NULL DEFAULT now())
                    """, logger: logger)
                var applied = Set<Int>()
                for try await version in try await connection.query(
                    "SELECT version FROM facet_migrations", logger: logger
                ).decode(Int.self) {
                    applied.insert(version)
                }
                if let newest = applied.max(), newest > PostgresMigrations.all.map(\.version).max() ?? 0 {
                    throw ArchiveError(
                        .invalidInput, "the index was migrated by a newer Facet (schema \(newest)); upgrade Facet")
                }
                for migration in PostgresMigrations.all where !applied.contains(migration.version) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO facet_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                        logger: logger)
                }
            }
        }
    }

    /// The schema versions recorded, in order.
    public func appliedMigrations() async throws(ArchiveError) -> [Int] {
        try await call { [self] in
            var versions: [Int] = []
            for try await version in try await client.query(
                "SELECT version FROM facet_migrations ORDER BY version", logger: logger
            ).decode(Int.self) {
                versions.append(version)
            }
            return versions
        }
    }

    /// A clinic's keys with its tenant key kept here (wrapped by the master key), so that every process sharing this
    /// database reads the same blobs: the one recorded, or the data folder's (an archive moving to the server
    /// setup), or a new one — whichever is recorded first wins when processes start together. A data folder whose
    /// own key differs from the recorded one is refused: its blobs would not open.
    public func keys(keyDirectory: URL, tenant: String, environment: [String: String]) async throws(ArchiveError)
        -> (keys: KeyHierarchy, createdMasterKey: Bool)
    {
        try KeyHierarchy.checkTenant(tenant)
        let (master, created) = try KeyHierarchy.masterKey(keyDirectory: keyDirectory, environment: environment)
        let (local, fresh) = try KeyHierarchy.tenantKeyMaterial(
            keyDirectory: keyDirectory, tenant: tenant, master: master)
        let offered = local ?? fresh
        let recorded = try await call { [self] in
            try await client.query(
                "INSERT INTO tenant_keys (tenant, wrapped) VALUES (\(tenant), \(offered)) ON CONFLICT (tenant) DO NOTHING",
                logger: logger)
            var recorded: Data?
            for try await wrapped in try await client.query(
                "SELECT wrapped FROM tenant_keys WHERE tenant = \(tenant)", logger: logger
            ).decode(Data.self) {
                recorded = wrapped
            }
            return recorded
        }
        guard let recorded else { throw ArchiveError(.key, "the tenant key could not be recorded in the index") }
        let keys = try KeyHierarchy.opening(
            tenant: tenant, wrapped: recorded, master: master,
            root: try KeyHierarchy.rootKey(keyDirectory: keyDirectory, master: master))
        guard let local else {
            // The data folder keeps the same key, so that the tools that open it (`facet users`, `facet audit`)
            // never make one of their own.
            try writePrivateFile(keyDirectory.appendingPathComponent("tenant-\(tenant).key"), recorded)
            return (keys, created)
        }
        if local != recorded {
            let mine = try KeyHierarchy.opening(tenant: tenant, wrapped: local, master: master)
            guard mine.hasSameTenantKey(as: keys) else {
                throw ArchiveError(
                    .key,
                    "this data folder's key for tenant \(tenant) differs from the one in the index database: its blobs "
                        + "would not open; use the data folder the database was made with")
            }
        }
        return (keys, created)
    }

    /// Runs database work, turning its errors into the archive's: a server that cannot be reached (down,
    /// restarting, refusing connections) is `.unavailable` (503 with Retry-After); a refused statement is `.io`.
    /// `breaker` learns whether the server answered.
    static func mapping<T: Sendable>(
        seconds: Double, breaker: OutageBreaker? = nil, probe: Bool = false,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws(ArchiveError) -> T {
        do {
            // The pool keeps trying to connect to a server that is down: the caller waits `seconds` at most. The
            // work goes on in its own task (cancelled) rather than holding the caller until it notices.
            let value = try await withDeadline(seconds: seconds, body)
            breaker?.answered()
            return value
        } catch {
            let inner =
                (error as? PostgresTransactionError).map {
                    $0.closureError ?? $0.beginError ?? $0.commitError ?? $0
                } ?? error
            if isOutage(inner) { breaker?.failed(now: Date(), probe: probe) } else { breaker?.answered() }
            throw classify(inner)
        }
    }

    /// Whether an error means the server could not be reached or is going away (not a statement it refused, nor a
    /// conflict between writers, nor the archive's own refusal).
    static func isOutage(_ error: any Error) -> Bool {
        // The deadline passed without an answer.
        if let error = error as? ArchiveError { return error.code == .unavailable }
        if let error = error as? PSQLError {
            guard error.code == .server else {
                // Connection-level: refused, closed, dropped, the pool giving up.
                return true
            }
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("57") || state.hasPrefix("08")
        }
        // Anything else (a row that does not decode, a cancelled task, the work's own error) says nothing about
        // whether the server is there.
        return false
    }

    static func classify(_ error: any Error) -> ArchiveError {
        if let error = error as? ArchiveError { return error }
        if let error = error as? PSQLError, error.code == .server {
            let state = error.serverInfo?[.sqlState] ?? "?"
            // A server shutting down or starting (57P0x), out of connections or resources (53…), a connection
            // problem (08…), a deadlock or serialization failure (40…): try again later, not a refusal.
            if ["57", "53", "08", "40"].contains(String(state.prefix(2))) {
                return ArchiveError(.unavailable, "the index database is not available (SQLSTATE \(state))")
            }
            // Never the statement's values: the SQLSTATE only.
            return ArchiveError(.io, "the index refused a statement (SQLSTATE \(state))")
        }
        // Anything else is the way to the server failing (refused or dropped connections, the pool giving up, the
        // deadline): the archive is unavailable for now, not broken.
        return ArchiveError(.unavailable, "the index database cannot be reached")
    }

    /// Whether an error is a unique-constraint violation (two writers raced on a key).
    static func isUniqueViolation(_ error: any Error) -> Bool {
        let inner =
            (error as? PostgresTransactionError)?.closureError ?? (error as? PostgresTransactionError)?
            .commitError ?? error
        return (inner as? PSQLError)?.serverInfo?[.sqlState] == "23505"
    }
}

/// Fail-fast while the database is away: after a call finds the server unreachable, calls are refused for `pause`
/// seconds; then one call at a time (a probe, with a short deadline) tries the server, and the first answer it gets
/// lets every call through again.
final class OutageBreaker: @unchecked Sendable {
    enum Admission { case pass, probe, refuse }

    private let lock = NSLock()
    private let pause: Double
    private var openUntil: Date?
    private var probing = false

    init(pause: Double) { self.pause = pause }

    func admit(now: Date) -> Admission {
        lock.withLock {
            guard let until = openUntil else { return .pass }
            if probing || now < until { return .refuse }
            probing = true
            return .probe
        }
    }

    func answered() {
        lock.withLock {
            openUntil = nil
            probing = false
        }
    }

    /// A call found the server away. Only the probe itself ends the probe: a call admitted before the window
    /// opened that fails late must not let a second probe start beside the first.
    func failed(now: Date, probe: Bool = false) {
        lock.withLock {
            openUntil = now.addingTimeInterval(pause)
            if probe { probing = false }
        }
    }
}

/// Runs `body`, or gives up after `seconds` with `.unavailable` (the body's task is cancelled and left to end).
func withDeadline<T: Sendable>(seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let gate = DeadlineGate<T>()
    return try await withCheckedThrowingContinuation { continuation in
        gate.continuation = continuation
        let work = Task {
            if gate.finish(with: await Result(catching: body)) { gate.timer?.cancel() }
        }
        gate.timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
            guard !Task.isCancelled else { return }
            if gate.finish(with: .failure(ArchiveError(.unavailable, "the index database did not answer in time"))) {
                work.cancel()
            }
        }
    }
}

/// Resumes a continuation once, with whichever result comes first.
private final class DeadlineGate<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    var continuation: CheckedContinuation<T, any Error>?
    private var timerTask: Task<Void, Never>?
    var timer: Task<Void, Never>? {
        get { lock.withLock { timerTask } }
        set { lock.withLock { timerTask = newValue } }
    }

    @discardableResult
    func finish(with result: Result<T, any Error>) -> Bool {
        let waiting: CheckedContinuation<T, any Error>? = lock.withLock {
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(with: result)
        return waiting != nil
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
