import DICOMCore
import Foundation

/// Identity and timing shared by the instances one conversion writes: the study they join, the UID generator,
/// the clock, and the equipment that is creating the DICOM objects.
public struct InstanceContext: Sendable {
    public var metadata: ClinicalMetadata
    public var uids: UIDGenerator
    public var studyInstanceUID: String
    public var now: Date
    /// Identity of the converting software, used for equipment attributes the source does not provide.
    public var softwareVersion: String
    public var deviceSerialNumber: String

    public init(
        metadata: ClinicalMetadata, uids: UIDGenerator, now: Date = Date(), softwareVersion: String = Facet.version,
        deviceSerialNumber: String = "UNSPECIFIED"
    ) {
        self.metadata = metadata
        self.uids = uids
        self.studyInstanceUID = metadata.studyInstanceUID ?? uids.make()
        self.now = now
        self.softwareVersion = softwareVersion
        self.deviceSerialNumber = deviceSerialNumber
    }

    /// `YYYYMMDD` and `HHMMSS` of `now` in the local time zone.
    var nowDate: String { Self.format(now, "yyyyMMdd") }
    var nowTime: String { Self.format(now, "HHmmss") }

    static func format(_ date: Date, _ pattern: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone.current
        formatter.dateFormat = pattern
        return formatter.string(from: date)
    }

    /// Patient, study, series and SOP common attributes that every Facet-created instance carries.
    func baseDataset(
        sopClassUID: String, sopInstanceUID: String, seriesInstanceUID: String, modality: String, seriesNumber: Int,
        instanceNumber: Int, captureDate: String? = nil, captureTime: String? = nil
    ) -> Dataset {
        var dataset = Dataset()
        dataset.set(.specificCharacterSet, .CS, "ISO_IR 192")
        dataset.set(.sopClassUID, .UI, sopClassUID)
        dataset.set(.sopInstanceUID, .UI, sopInstanceUID)
        dataset.set(.instanceCreationDate, .DA, nowDate)
        dataset.set(.instanceCreationTime, .TM, nowTime)
        // Patient module (all Type 2: present, empty when unknown).
        dataset.set(.patientName, .PN, strings: metadata.patientName.map { [$0] } ?? [])
        dataset.set(.patientID, .LO, strings: metadata.patientID.map { [$0] } ?? [])
        dataset.set(.patientBirthDate, .DA, strings: metadata.patientBirthDate.map { [$0] } ?? [])
        dataset.set(.patientSex, .CS, strings: metadata.patientSex.map { [$0] } ?? [])
        // General Study module.
        dataset.set(.studyInstanceUID, .UI, studyInstanceUID)
        dataset.set(.studyDate, .DA, metadata.studyDate ?? captureDate ?? nowDate)
        dataset.set(.studyTime, .TM, metadata.studyTime ?? captureTime ?? nowTime)
        dataset.set(.referringPhysicianName, .PN, strings: [])
        dataset.set(.studyID, .SH, strings: metadata.studyID.map { [$0] } ?? [])
        dataset.set(.accessionNumber, .SH, strings: metadata.accessionNumber.map { [$0] } ?? [])
        if let description = metadata.studyDescription { dataset.set(.studyDescription, .LO, description) }
        // General Series module.
        dataset.set(.modality, .CS, modality)
        dataset.set(.seriesInstanceUID, .UI, seriesInstanceUID)
        dataset.set(.seriesNumber, .IS, String(seriesNumber))
        if let description = metadata.seriesDescription { dataset.set(.seriesDescription, .LO, description) }
        if let part = metadata.bodyPartExamined ?? metadata.region?.bodyPartExamined {
            dataset.set(.bodyPartExamined, .CS, part)
        }
        dataset.set(.instanceNumber, .IS, String(instanceNumber))
        return dataset
    }
}

/// Facet's identity as written into the DICOM objects it creates.
public enum Facet {
    public static let version = "0.1.0"
    public static let manufacturer = "Facet"
}
