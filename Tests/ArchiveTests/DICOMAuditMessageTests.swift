import DICOMCore
import Foundation
import Testing

@testable import Archive

/// Audit entries as DICOM audit messages (PS3.15 A.5.3 event codes): the event each kind of action is, its action
/// code and outcome, the patient as a Person/Patient participant by keyed hash.
@Suite struct DICOMAuditMessageTests {
    func entry(_ action: String, outcome: String = "success", patient: String? = nil) -> AuditEntry {
        var fields: [String: Any] = [
            "seq": 7, "time": "2026-12-02T10:00:00.000Z", "actor": "default/dr.a", "address": "10.0.0.5",
            "action": action, "study": NSNull(), "series": [String](), "instances": [String](), "outcome": outcome,
        ]
        if let patient { fields["patient"] = patient }
        let data = try! JSONSerialization.data(withJSONObject: fields)
        return AuditEntry(line: String(decoding: data, as: UTF8.self))!
    }

    @Test func actionsMapToTheStandardsEvents() {
        let patient = String(repeating: "ab", count: 32)
        let cases: [(String, String, String)] = [
            ("login", "110114", "E"), ("logout", "110114", "E"), ("QIDO studies", "110112", "E"),
            ("STOW store", "110104", "C"), ("delete", "110105", "D"), ("WADO retrieve", "110103", "R"),
            ("export 1234 (channel website, 2 photos)", "110106", "R"),
            ("treatment create (patient \(patient), treatment x)", "110110", "C"),
            ("consent withdrawn (patient \(patient), consent y)", "110110", "U"),
            ("annotation delete", "110110", "D"), ("timeline read (patient \(patient))", "110110", "R"),
            ("access denied: patient read", "110110", "R"), ("audit read (3 of 3 entries)", "110101", "R"),
            ("disposal request 1 (patient \(patient))", "110110", "C"), ("disposal cancel 1", "110110", "U"),
            ("disposal read 1", "110110", "R"),
            ("disposal 1 (patient \(patient)): done by cryptographic erase, key k", "110110", "D"),
        ]
        for (action, id, code) in cases {
            let kind = DICOMAuditMessage.classify(action)
            #expect(kind.id.0 == id && kind.action == code, "\(action)")
        }
        #expect(DICOMAuditMessage.outcome("failure-403") == "4" && DICOMAuditMessage.outcome("error-503") == "8")
        let xml = DICOMAuditMessage.xml(
            entry("timeline read (patient \(patient))", outcome: "failure-403"), source: "facet/default")
        #expect(xml.contains("EventOutcomeIndicator=\"4\""))
        #expect(
            xml.contains(
                "ParticipantObjectID=\"\(patient)\" ParticipantObjectTypeCode=\"1\" ParticipantObjectTypeCodeRole=\"1\""
            ))
        #expect(xml.contains("NetworkAccessPointID=\"10.0.0.5\" NetworkAccessPointTypeCode=\"2\""))
        #expect(DICOMXML.escape("a<b&\"c\u{1}") == "a&lt;b&amp;&quot;c")
    }
}
