import Archive
import ArgumentParser
import Foundation

/// `facet users`: accounts, their credentials and care teams. Works beside a running `facet serve` on the same data
/// folder: it takes no lock of its own and shares `index.sqlite` through SQLite's WAL.
struct UsersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users",
        abstract: "Manage accounts: add, list, disable, enable, reset-mfa, set-password, set-role, assign.",
        discussion: "Exit codes: 0 done, 1 refused (e.g. the username exists, no such account), 2 usage.",
        subcommands: [
            UsersAddCommand.self, UsersListCommand.self, UsersDisableCommand.self, UsersEnableCommand.self,
            UsersResetMFACommand.self, UsersSetPasswordCommand.self, UsersSetRoleCommand.self, UsersAssignCommand.self,
        ])
}

/// The options every `facet users` subcommand shares.
struct UsersLocation: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The archive's data folder (default ./facet-data).")
    var dataDirectory: String = "./facet-data"

    @Option(help: "The tenant (clinic) of the account.")
    var tenant: String = "default"

    @Option(
        help:
            "The index, when the server keeps it on PostgreSQL: postgres://user:password@host:port/database (default FACET_INDEX; the environment keeps the password off the command line)."
    )
    var index: String?

    func open() async throws -> AccountAdministration {
        try await openAccountAdministration(dataDirectory: dataDirectory, tenant: tenant, index: index)
    }
}

/// The account administration over the data folder's keys and its index: `DATA/index.sqlite`, or the PostgreSQL
/// index of a server setup (`index`, else FACET_INDEX), where every replica reads the same accounts. Refuses (exit 2)
/// a bad tenant name, and (exit 1) a folder whose blobs have no index: creating `index.sqlite` there would hide that
/// it is missing.
func openAccountAdministration(dataDirectory: String, tenant: String, index: String?) async throws
    -> AccountAdministration
{
    guard Account.isValidTenant(tenant) else {
        throw fail("tenant names are letters, digits and '-' (at most 64)", code: 2)
    }
    let root = URL(fileURLWithPath: dataDirectory)
    let environment = ProcessInfo.processInfo.environment
    if let url = index ?? environment["FACET_INDEX"].flatMap({ $0.isEmpty ? nil : $0 }) {
        do throws(ArchiveError) {
            let location = try PostgresDatabase.Location.parse(url)
            let database = try await PostgresDatabase.open(location)
            let (keys, created) = try await database.keys(
                keyDirectory: root.appendingPathComponent("keys"), tenant: tenant, environment: environment)
            if created { warnNewMasterKey(dataDirectory) }
            return AccountAdministration(store: PostgresAccountStore(database: database, keys: keys), keys: keys)
        } catch {
            throw fail(error.message)
        }
    }
    let indexFile = root.appendingPathComponent("index.sqlite")
    let blobs = root.appendingPathComponent("blobs")
    if !FileManager.default.fileExists(atPath: indexFile.path),
        let contents = try? FileManager.default.contentsOfDirectory(atPath: blobs.path), !contents.isEmpty
    {
        throw fail("the data folder has blobs but no index.sqlite: restore the index before adding accounts")
    }
    do {
        let (keys, created) = try KeyHierarchy.open(keyDirectory: root.appendingPathComponent("keys"), tenant: tenant)
        if created { warnNewMasterKey(dataDirectory) }
        let store = try SQLiteAccountStore(path: indexFile, keys: keys)
        return AccountAdministration(store: store, keys: keys)
    } catch {
        throw fail(error.message)
    }
}

private func warnNewMasterKey(_ dataDirectory: String) {
    FileHandle.standardError.write(
        Data(
            "facet: generated a new master key in \(dataDirectory)/keys/master.key: back it up apart from the data\n"
                .utf8))
}

/// Maps an archive refusal to one line and an exit code: bad input is a usage error (2), the rest is refused (1).
func usersFailure(_ error: ArchiveError) -> ExitCode {
    fail(error.message, code: error.code == .invalidInput ? 2 : 1)
}

/// A password from standard input: everything up to end of file, without one trailing line break. Never echoed.
func readPasswordFromStandardInput() throws -> String {
    let data = FileHandle.standardInput.readData(ofLength: PasswordHasher.maximumPasswordBytes + 3)
    guard data.count <= PasswordHasher.maximumPasswordBytes + 2, var text = String(data: data, encoding: .utf8) else {
        throw fail("the password on standard input is not UTF-8 or is too long", code: 2)
    }
    // "\r\n" is one Character in Swift: removing the last Character drops both bytes.
    if text.hasSuffix("\n") || text.hasSuffix("\r\n") { text.removeLast() }
    guard !text.isEmpty else { throw fail("no password on standard input", code: 2) }
    return text
}

/// Prints an answer in the JSON form the server's `/api/v1/users` uses too.
func printJSON(_ value: some Encodable) throws {
    FileHandle.standardOutput.write(try AccountAdministration.json(value) + Data("\n".utf8))
}

/// A role by name, or a usage error listing the roles.
func parseRole(_ name: String) throws -> Role {
    guard let role = Role(rawValue: name) else {
        throw fail("unknown role \(name); roles: \(Role.allCases.map(\.rawValue).joined(separator: ", "))", code: 2)
    }
    return role
}

/// `facet users add USERNAME --role ROLE`.
struct UsersAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add an account: people get a TOTP provisioning URI, devices and integrations client credentials.",
        discussion: "Roles: \(Role.allCases.map(\.rawValue).joined(separator: ", ")).")

    @Argument(help: "The username (a-z, 0-9, '.', '_', '-', '@').") var username: String
    @Option(help: "The role.") var role: String
    @OptionGroup var location: UsersLocation
    @Flag(name: .customLong("password-stdin"), help: "Read the password from standard input (else one is generated).")
    var passwordFromStandardInput = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let role = try parseRole(role)
        if role.isService && passwordFromStandardInput {
            throw fail("service accounts get a generated client secret, not a password", code: 2)
        }
        let password = passwordFromStandardInput ? try readPasswordFromStandardInput() : nil
        let administration = try await location.open()
        let credentials: AccountAdministration.Credentials
        do {
            credentials = try await administration.add(
                tenant: location.tenant, username: username, role: role, password: password)
        } catch {
            throw usersFailure(error)
        }
        if json {
            try printJSON(credentials)
            return
        }
        print("added \(credentials.username) (\(credentials.role)) to tenant \(credentials.tenant)")
        if let password = credentials.generatedPassword { print("password: \(password)") }
        if let uri = credentials.otpauthURI { print("TOTP (scan into an authenticator app): \(uri)") }
        if let id = credentials.clientID, let secret = credentials.clientSecret {
            print("client_id: \(id)")
            print("client_secret: \(secret)")
        }
    }
}

/// `facet users list`.
struct UsersListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List accounts (no secrets).")

    @Option(name: .customLong("data-dir"), help: "The archive's data folder (default ./facet-data).")
    var dataDirectory: String = "./facet-data"
    @Option(help: "Only this tenant's accounts (default: every tenant).") var tenant: String?
    @Option(help: "The index on PostgreSQL, as for `facet users add` (default FACET_INDEX).") var index: String?
    @Flag(help: "Print a JSON array.") var json = false

    func run() async throws {
        let administration = try await openAccountAdministration(
            dataDirectory: dataDirectory, tenant: tenant ?? "default", index: index)
        let accounts: [AccountAdministration.Summary]
        do {
            accounts = try await administration.list(tenant: tenant)
        } catch {
            throw usersFailure(error)
        }
        if json {
            try printJSON(accounts)
            return
        }
        for account in accounts {
            var line = "\(account.tenant)\t\(account.username)\t\(account.role)\t\(account.status.rawValue)"
            if let id = account.clientID { line += "\tclient_id \(id)" }
            if let until = account.lockedUntil { line += "\tlocked until \(until)" }
            print(line)
        }
    }
}

/// `facet users disable USERNAME`: refuses logins and ends the account's sessions at once.
struct UsersDisableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable", abstract: "Disable an account and end its sessions.")
    @Argument(help: "The username.") var username: String
    @OptionGroup var location: UsersLocation

    func run() async throws {
        do {
            try await location.open().setStatus(tenant: location.tenant, username: username, .disabled)
        } catch let error as ArchiveError {
            throw usersFailure(error)
        }
        print("disabled \(username)")
    }
}

/// `facet users enable USERNAME`: allows logins again and clears a lockout.
struct UsersEnableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable", abstract: "Enable an account (and clear its lockout).")
    @Argument(help: "The username.") var username: String
    @OptionGroup var location: UsersLocation

    func run() async throws {
        do {
            try await location.open().setStatus(tenant: location.tenant, username: username, .active)
        } catch let error as ArchiveError {
            throw usersFailure(error)
        }
        print("enabled \(username)")
    }
}

/// `facet users reset-mfa USERNAME`: a new TOTP secret; prints its provisioning URI.
struct UsersResetMFACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset-mfa", abstract: "Give a person a new TOTP secret and print its provisioning URI.")
    @Argument(help: "The username.") var username: String
    @OptionGroup var location: UsersLocation
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let uri: String
        do {
            uri = try await location.open().resetMFA(tenant: location.tenant, username: username)
        } catch let error as ArchiveError {
            throw usersFailure(error)
        }
        if json {
            try printJSON(AccountAdministration.Reissued(tenant: location.tenant, username: username, otpauthURI: uri))
        } else {
            print("TOTP (scan into an authenticator app): \(uri)")
        }
    }
}

/// `facet users set-password USERNAME [--password-stdin]`.
struct UsersSetPasswordCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-password",
        abstract: "Set a person's password (generated unless --password-stdin), or a new secret for a service account.")
    @Argument(help: "The username.") var username: String
    @OptionGroup var location: UsersLocation
    @Flag(name: .customLong("password-stdin"), help: "Read the password from standard input.")
    var passwordFromStandardInput = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let password = passwordFromStandardInput ? try readPasswordFromStandardInput() : nil
        let generated: String?
        do {
            generated = try await location.open().setPassword(
                tenant: location.tenant, username: username, password: password)
        } catch let error as ArchiveError {
            throw usersFailure(error)
        }
        if json {
            try printJSON(
                AccountAdministration.Reissued(tenant: location.tenant, username: username, password: generated))
        } else {
            print("password set for \(username); its sessions are ended")
            if let generated { print("new secret: \(generated)") }
        }
    }
}

/// `facet users set-role USERNAME --role ROLE`: ends the account's sessions, whose tokens name the old role.
struct UsersSetRoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-role",
        abstract: "Give an account another role and end its sessions (people stay people, machines machines).")
    @Argument(help: "The username.") var username: String
    @Option(help: "The new role.") var role: String
    @OptionGroup var location: UsersLocation

    func run() async throws {
        let role = try parseRole(role)
        do {
            try await location.open().setRole(tenant: location.tenant, username: username, role: role)
        } catch let error as ArchiveError {
            throw usersFailure(error)
        }
        print("\(username) is now \(role); its sessions are ended")
    }
}

/// `facet users assign USERNAME --patient-id ID [--issuer I]`: adds a user to a patient's care team.
struct UsersAssignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assign",
        abstract: "Add a user to a patient's care team (the Patient ID is kept only as a keyed hash).")
    @Argument(help: "The username.") var username: String
    @Option(name: .customLong("patient-id"), help: "The Patient ID (0010,0020).") var patientID: String
    @Option(help: "The Issuer of Patient ID (0010,0021), if the clinic uses one.") var issuer: String?
    @OptionGroup var location: UsersLocation

    func run() async throws {
        do {
            _ = try await location.open().assign(
                tenant: location.tenant, username: username, patientID: patientID, issuer: issuer)
        } catch let error as ArchiveError {
            throw usersFailure(error)
        }
        // The Patient ID is PHI: not repeated here.
        print("added \(username) to the patient's care team")
    }
}
