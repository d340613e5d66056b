import Crypto
import DICOMCore
import Foundation

extension KeyHierarchy {
    /// A patient as audit events (and, later, care teams and grants) name them: HMAC-SHA256 of the Patient ID and
    /// its Issuer under a key derived from the master key, 128 bits in hex. Stable for one archive, meaningless
    /// without its key, so a patient can be followed through the audit trail without their ID in the clear.
    public func patientKey(patientID: String, issuer: String?) -> String? {
        let id = patientID.trimmingCharacters(in: .whitespaces)
        guard !id.isEmpty else { return nil }
        let issuer = issuer?.trimmingCharacters(in: .whitespaces) ?? ""
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("\(id)\u{0}\(issuer)".utf8), using: derivedKey("facet patient key v1"))
        return Formatting.hex(Data(mac).prefix(16))
    }
}

extension ArchiveService {
    /// The keyed patient hash of a stored study's patient (nil for an unknown study or one without Patient ID).
    public func patientKey(forStudy studyUID: String) -> String? {
        guard let study = index.catalog().studies[studyUID], let id = study.attributes.string(.patientID) else {
            return nil
        }
        return keys.patientKey(patientID: id, issuer: study.attributes.string(Tag(0x0010, 0x0021)))
    }
}
