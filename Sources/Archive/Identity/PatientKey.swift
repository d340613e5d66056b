import Crypto
import Foundation

/// A patient as identity code knows it: a keyed hash (HMAC-SHA256 under a key derived from the master key) of the
/// tenant, the Issuer of Patient ID and the Patient ID. The Patient ID itself is never stored by identity code.
public struct PatientKey: Sendable, Hashable, CustomStringConvertible {
    /// 64 lower-case hex digits.
    public let hex: String

    /// Wraps a stored key; nil unless it is 64 lower-case hex digits.
    public init?(hex: String) {
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        self.hex = hex
    }

    /// The key of a patient of `tenant`; nil when the Patient ID is empty (after trimming spaces).
    public static func make(tenant: String, patientID: String, issuer: String?, keys: KeyHierarchy) -> PatientKey? {
        let id = patientID.trimmingCharacters(in: .whitespaces)
        guard !id.isEmpty else { return nil }
        let issuer = (issuer ?? "").trimmingCharacters(in: .whitespaces)
        let key = keys.patientHashKey
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(tenant)\u{0}\(issuer)\u{0}\(id)".utf8), using: key)
        return PatientKey(hex: Formatting.hex(Data(mac)))
    }

    public var description: String { hex }
}
