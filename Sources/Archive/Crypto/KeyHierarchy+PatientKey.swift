import DICOMCore
import Foundation

extension KeyHierarchy {
    /// A patient as audit events, care teams and break-the-glass grants name them: `PatientKey` (HMAC-SHA256 of
    /// the tenant, the Issuer and the Patient ID under a key derived from the master key), in hex. Stable for one
    /// archive, meaningless without its key, so a patient can be followed through the audit trail without their ID
    /// in the clear.
    public func patientKey(patientID: String, issuer: String?) -> String? {
        PatientKey.make(tenant: tenant, patientID: patientID, issuer: issuer, keys: self)?.hex
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

    /// The keyed patient hash of a stored instance's patient.
    public func patientKey(forInstance sopInstanceUID: String) -> String? {
        index.instance(sopInstanceUID).flatMap { patientKey(forStudy: $0.studyInstanceUID) }
    }
}
