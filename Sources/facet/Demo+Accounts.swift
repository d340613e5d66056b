import Archive
import Foundation

extension DemoClinic {
    /// One demo account per role, created on the demo's first start: people with a generated password and no TOTP
    /// (demo accounts alone may skip it, on loopback only), machines with client credentials; the medical assistant
    /// is on the first demo patient's care team. Written once to `DATA/demo-accounts.txt` (mode 0600) and returned
    /// as the banner to print.
    static func createAccounts(_ identity: IdentityServices, folder: URL, baseURL: String) async throws -> String {
        let tenant = identity.keys.tenant
        var lines = [
            "Demo accounts (synthetic data, loopback only; they log in without TOTP — real accounts never do):"
        ]
        for role in Role.allCases {
            let username = "demo-\(role.rawValue)"
            let made = try await identity.administration.add(
                tenant: tenant, username: username, role: role, totpExempt: !role.isService)
            if let clientID = made.clientID, let secret = made.clientSecret {
                lines.append("  \(role.rawValue): client_id \(clientID)  client_secret \(secret)")
            } else {
                lines.append("  \(role.rawValue): \(username)  password \(made.generatedPassword ?? "(given)")")
            }
        }
        if let first = patients.first {
            try await identity.administration.assign(
                tenant: tenant, username: "demo-\(Role.medicalAssistant.rawValue)", patientID: first.id, issuer: nil)
        }
        lines.append(
            "  Log in: curl -s -X POST \(baseURL)/api/v1/auth/login -H 'Content-Type: application/json' "
                + "-d '{\"username\":\"demo-physician\",\"password\":\"...\"}'")
        lines.append("  (also in DATA/demo-accounts.txt, readable by this user only)")
        let text = lines.joined(separator: "\n") + "\n"
        // Created 0600 from the start (never readable by others, not even for a moment).
        let file = folder.appendingPathComponent("demo-accounts.txt")
        let descriptor = open(file.path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw ArchiveError(.io, "demo-accounts.txt cannot be created") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == bytes.count else {
            throw ArchiveError(.io, "demo-accounts.txt cannot be written")
        }
        return text
    }
}
