import Crypto
import Foundation

/// How every `AccountStore` seals account secrets (TOTP secrets, break-the-glass reasons): AES-256-GCM under a key
/// derived from the master key, bound to their row (tenant and username, or grant id) as associated data, so that a
/// sealed value copied to another row fails to open.
struct AccountSealing: Sendable {
    // SymmetricKey is not Sendable: the key is kept as bytes.
    private let keyBytes: Data

    init(keys: KeyHierarchy) {
        keyBytes = keys.derivedKey("facet accounts v1").withUnsafeBytes { Data($0) }
    }

    func seal(_ data: Data, context: String) throws(ArchiveError) -> Data {
        guard
            let box = try? AES.GCM.seal(data, using: SymmetricKey(data: keyBytes), authenticating: Data(context.utf8)),
            let combined = box.combined
        else { throw ArchiveError(.key, "an account secret cannot be sealed") }
        return Data(combined)
    }

    func open(_ sealed: Data, context: String) throws(ArchiveError) -> Data {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return Data(try AES.GCM.open(box, using: SymmetricKey(data: keyBytes), authenticating: Data(context.utf8)))
        } catch {
            throw ArchiveError(.integrity, "an account secret fails authentication (wrong key or altered)")
        }
    }

    static func totpContext(_ tenant: String, _ username: String) -> String { "totp\u{0}\(tenant)\u{0}\(username)" }
    static func grantContext(_ id: String) -> String { "break-glass\u{0}\(id)" }

    /// Failed login times as stored (seconds since 1970, comma-separated).
    static func encodeFailures(_ dates: [Date]) -> String {
        dates.map { String($0.timeIntervalSince1970) }.joined(separator: ",")
    }

    static func decodeFailures(_ text: String) -> [Date] {
        text.split(separator: ",").compactMap { Double($0) }.map { Date(timeIntervalSince1970: $0) }
    }
}
