import DICOMCore
import Foundation

/// Whether an instance belongs to the patient its study is stored under: Patient ID with its Issuer (0010,0021)
/// must be equal (trimmed); Patient's Name may differ only in case and padding.
enum PatientIdentity {
    enum Comparison: Equatable {
        case same
        /// Patient's Name differs only in case, trailing `^`, or spaces around its components.
        case sameAfterNormalisation
        case differentID
        case differentName
    }

    static let issuerOfPatientID = Tag(0x0010, 0x0021)

    /// Compares the patient attributes of a stored study with those of an arriving instance.
    static func compare(stored: Dataset, incoming: Dataset) -> Comparison {
        for tag in [Tag.patientID, issuerOfPatientID] where trimmed(stored, tag) != trimmed(incoming, tag) {
            return .differentID
        }
        let storedName = stored.personName(.patientName)?.dicomString ?? ""
        let incomingName = incoming.personName(.patientName)?.dicomString ?? ""
        if storedName == incomingName { return .same }
        return normalised(storedName) == normalised(incomingName) ? .sameAfterNormalisation : .differentName
    }

    static func trimmed(_ dataset: Dataset, _ tag: Tag) -> String {
        (dataset.string(tag) ?? "").trimmingCharacters(in: .whitespaces)
    }

    /// Upper-cased, each component trimmed, trailing empty components (and groups) dropped.
    static func normalised(_ name: String) -> String {
        var groups = name.split(separator: "=", omittingEmptySubsequences: false).map { group -> String in
            var components = group.split(separator: "^", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces).uppercased()
            }
            while components.last?.isEmpty == true { components.removeLast() }
            return components.joined(separator: "^")
        }
        while groups.last?.isEmpty == true { groups.removeLast() }
        return groups.joined(separator: "=")
    }
}
