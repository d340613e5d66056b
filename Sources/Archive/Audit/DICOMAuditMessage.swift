import DICOMCore
import Foundation

/// An audit entry as a DICOM audit message (PS3.15 Annex A.5, the XML schema of A.5.1; event codes of A.5.3 and
/// PS3.16 CID 400-405): what the clinic's privacy officer imports into an audit repository or a SIEM.
///
/// The patient is identified by Facet's keyed hash (ParticipantObjectID of a Person/Patient object, ID type
/// RFC-3881 "2" Patient Number): the audit trail never holds a Patient ID or a name, so neither does its export.
public enum DICOMAuditMessage {
    /// The event's code, its action (C R U D E) and an optional event type code.
    struct Classification {
        var id: (String, String)
        var action: String
        var type: (String, String)?
    }

    static func classify(_ action: String) -> Classification {
        let text = action.hasPrefix("access denied: ") ? String(action.dropFirst(15)) : action
        func starts(_ prefixes: String...) -> Bool { prefixes.contains { text.hasPrefix($0) } }
        if starts("login", "token") {
            return Classification(id: ("110114", "User Authentication"), action: "E", type: ("110122", "Login"))
        }
        if starts("logout") {
            return Classification(id: ("110114", "User Authentication"), action: "E", type: ("110123", "Logout"))
        }
        if starts("account") {
            return Classification(
                id: ("110113", "Security Alert"), action: "E", type: ("110137", "User security Attributes Changed"))
        }
        if starts("audit chain", "audit log", "key rotation") {
            return Classification(id: ("110113", "Security Alert"), action: "E")
        }
        if starts("audit read", "audit export") {
            return Classification(id: ("110101", "Audit Log Used"), action: "R")
        }
        if starts("break the glass") {
            return Classification(
                id: ("110110", "Patient Record"), action: "E", type: ("110127", "Emergency Override Started"))
        }
        if starts("QIDO", "patients search", "comparisons read", "shares read", "comparison suggestion")
            || (text.hasPrefix("FHIR") && text.contains("search"))
        {
            return Classification(id: ("110112", "Query"), action: "E")
        }
        if starts("STOW", "upload", "photo upload", "scan upload") {
            return Classification(id: ("110104", "DICOM Instances Transferred"), action: "C")
        }
        if starts("trash restore") { return Classification(id: ("110110", "Patient Record"), action: "U") }
        if starts("delete") { return Classification(id: ("110105", "DICOM Study Deleted"), action: "D") }
        // Disposal (issue 12 §4): asked for (C), withdrawn (U), read (R); approved and carried out (D).
        if starts("disposal request") { return Classification(id: ("110110", "Patient Record"), action: "C") }
        if starts("disposal cancel") { return Classification(id: ("110110", "Patient Record"), action: "U") }
        if starts("disposal read", "disposal list") {
            return Classification(id: ("110110", "Patient Record"), action: "R")
        }
        if starts("disposal") { return Classification(id: ("110110", "Patient Record"), action: "D") }
        if starts("export", "share opened", "share download") {
            return Classification(id: ("110106", "Export"), action: "R")
        }
        if starts("WADO", "comparison report", "originals") {
            return Classification(id: ("110103", "DICOM Instances Accessed"), action: "R")
        }
        if text.contains("create") || text.contains("register") || text.contains("granted") || text == "share"
            || text.hasPrefix("share (") || text.hasPrefix("comparison request")
        {
            return Classification(id: ("110110", "Patient Record"), action: "C")
        }
        if text.contains("delete") { return Classification(id: ("110110", "Patient Record"), action: "D") }
        if text.contains("change") || text.contains("withdrawn") || text.contains("revoke")
            || text.hasPrefix("comparison cancel")
        {
            return Classification(id: ("110110", "Patient Record"), action: "U")
        }
        if text.contains("read") || text.hasPrefix("who am I") {
            return Classification(id: ("110110", "Patient Record"), action: "R")
        }
        return Classification(id: ("110100", "Application Activity"), action: "E")
    }

    /// 0 success, 4 minor failure (refused or malformed: 4xx), 8 serious failure (5xx).
    static func outcome(_ text: String) -> String {
        if text == "success" { return "0" }
        return text.hasPrefix("error") ? "8" : "4"
    }

    static func code(_ element: String, _ code: (String, String), system: String = "DCM") -> String {
        "<\(element) csd-code=\"\(DICOMXML.escape(code.0))\" codeSystemName=\"\(system)\" originalText=\"\(DICOMXML.escape(code.1))\"/>"
    }

    /// One `AuditMessage` element.
    public static func xml(_ entry: AuditEntry, source: String) -> String {
        let kind = classify(entry.action)
        var xml = "<AuditMessage>"
        xml +=
            "<EventIdentification EventActionCode=\"\(kind.action)\" EventDateTime=\"\(DICOMXML.escape(entry.time))\" "
            + "EventOutcomeIndicator=\"\(outcome(entry.outcome))\">"
        xml += code("EventID", kind.id)
        if let type = kind.type { xml += code("EventTypeCode", type) }
        xml += "<EventOutcomeDescription>\(DICOMXML.escape(entry.action))</EventOutcomeDescription>"
        xml += "</EventIdentification>"
        let address = entry.address
        let network =
            address.isEmpty || address == "unknown" || address == "local"
            ? "" : " NetworkAccessPointID=\"\(DICOMXML.escape(address))\" NetworkAccessPointTypeCode=\"2\""
        xml += "<ActiveParticipant UserID=\"\(DICOMXML.escape(entry.actor))\" UserIsRequestor=\"true\"\(network)/>"
        xml +=
            "<ActiveParticipant UserID=\"\(DICOMXML.escape(source))\" UserIsRequestor=\"false\">"
            + code("RoleIDCode", ("110150", "Application")) + "</ActiveParticipant>"
        xml +=
            "<AuditSourceIdentification AuditSourceID=\"\(DICOMXML.escape(source))\">"
            + code("AuditSourceTypeCode", ("4", "Application Server"), system: "DCM") + "</AuditSourceIdentification>"
        for patient in entry.patients.sorted() {
            xml +=
                "<ParticipantObjectIdentification ParticipantObjectID=\"\(DICOMXML.escape(patient))\" "
                + "ParticipantObjectTypeCode=\"1\" ParticipantObjectTypeCodeRole=\"1\">"
                + code("ParticipantObjectIDTypeCode", ("2", "Patient Number"), system: "RFC-3881")
                + "</ParticipantObjectIdentification>"
        }
        var studies = entry.study.map { [$0] } ?? []
        studies += entry.resultStudies.filter { !studies.contains($0) }
        for study in studies {
            xml +=
                "<ParticipantObjectIdentification ParticipantObjectID=\"\(DICOMXML.escape(study))\" "
                + "ParticipantObjectTypeCode=\"2\" ParticipantObjectTypeCodeRole=\"3\">"
                + code("ParticipantObjectIDTypeCode", ("110180", "Study Instance UID"))
                + (study == entry.study && !entry.instances.isEmpty
                    ? "<ParticipantObjectDetail type=\"instances\" value=\"\(Data(entry.instances.joined(separator: "\\").utf8).base64EncodedString())\"/>"
                    : "")
                + "</ParticipantObjectIdentification>"
        }
        return xml + "</AuditMessage>"
    }

    /// A document of several messages: `<AuditMessages>` (Facet's wrapper) holding one `AuditMessage` each.
    public static func document(_ entries: [AuditEntry], source: String) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AuditMessages>\n"
            + entries.map { xml($0, source: source) + "\n" }.joined() + "</AuditMessages>\n"
    }
}
