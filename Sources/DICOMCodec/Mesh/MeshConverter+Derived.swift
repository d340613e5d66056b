import DICOMCore
import Foundation

extension MeshConverter {
    /// An instance a derived surface was made from (the captures of a comparison).
    public struct Source: Sendable {
        public var sopClassUID: String
        public var sopInstanceUID: String
        public var seriesInstanceUID: String
        public var studyInstanceUID: String

        public init(sopClassUID: String, sopInstanceUID: String, seriesInstanceUID: String, studyInstanceUID: String) {
            self.sopClassUID = sopClassUID
            self.sopInstanceUID = sopInstanceUID
            self.seriesInstanceUID = seriesInstanceUID
            self.studyInstanceUID = studyInstanceUID
        }

        /// The instance as an item of a Source Instance or Referenced SOP sequence.
        public var referenceItem: Dataset {
            var item = Dataset()
            item.set(.referencedSOPClassUID, .UI, sopClassUID)
            item.set(.referencedSOPInstanceUID, .UI, sopInstanceUID)
            return item
        }
    }

    /// A surface Facet derived from stored captures (the change map of a comparison: BEFORE with vertex colours) as
    /// Encapsulated OBJ in `context`'s study, a series of its own, a Model Group UID of its own, in the Frame of
    /// Reference it was measured in. Its sources are named in the Source Instance Sequence and the Common Instance
    /// Reference module (sources of other studies under Studies Containing Other Referenced Instances).
    public static func derivedOBJ(
        _ obj: Data, title: String, context: InstanceContext, seriesNumber: Int, frameOfReference: String?,
        sources: [Source]
    ) throws(DICOMCodecError) -> PreparedInstance {
        try checkSize(obj)
        var dataset = documentDataset(
            obj, sopClass: UID.encapsulatedOBJStorage, mime: "model/obj", title: title, context: context,
            seriesUID: context.uids.make(), seriesNumber: seriesNumber, instanceNumber: 1,
            frameOfReference: frameOfReference ?? context.uids.make(), modelGroup: context.uids.make(), references: [])
        // Source Instance Sequence: Type 1C, present only when the document was made from other instances (a scanned
        // consent form was not).
        if !sources.isEmpty { dataset.set(Tag(0x0042, 0x0013), sequence: sources.map(\.referenceItem)) }
        func seriesItems(_ sources: [Source]) -> [Dataset] {
            Dictionary(grouping: sources, by: \.seriesInstanceUID).sorted { $0.key < $1.key }.map { series, members in
                var item = Dataset()
                item.set(.seriesInstanceUID, .UI, series)
                item.set(
                    .referencedInstanceSequence,
                    sequence: members.map { source in
                        var instance = Dataset()
                        instance.set(.referencedSOPClassUID, .UI, source.sopClassUID)
                        instance.set(.referencedSOPInstanceUID, .UI, source.sopInstanceUID)
                        return instance
                    })
                return item
            }
        }
        let own = sources.filter { $0.studyInstanceUID == context.studyInstanceUID }
        let others = sources.filter { $0.studyInstanceUID != context.studyInstanceUID }
        if !own.isEmpty { dataset.set(Tag(0x0008, 0x1115), sequence: seriesItems(own)) }
        if !others.isEmpty {
            dataset.set(
                Tag(0x0008, 0x1200),  // Studies Containing Other Referenced Instances Sequence
                sequence: Dictionary(grouping: others, by: \.studyInstanceUID).sorted { $0.key < $1.key }.map {
                    study, members in
                    var item = Dataset()
                    item.set(.studyInstanceUID, .UI, study)
                    item.set(Tag(0x0008, 0x1115), sequence: seriesItems(members))
                    return item
                })
        }
        return PreparedInstance(dataset: dataset, transferSyntaxUID: UID.explicitVRLittleEndian, notes: [])
    }
}

extension ClinicalMetadata {
    /// The patient and study of an indexed study (its attributes as the catalogue holds them), for objects Facet
    /// adds to that study.
    public init(study attributes: Dataset) {
        self.init()
        patientName = attributes.string(.patientName)
        patientID = attributes.string(.patientID)
        patientBirthDate = attributes.string(.patientBirthDate)
        patientSex = attributes.string(.patientSex)
        studyInstanceUID = attributes.string(.studyInstanceUID)
        studyDate = attributes.string(.studyDate)
        studyTime = attributes.string(.studyTime)
        studyDescription = attributes.string(.studyDescription)
        accessionNumber = attributes.string(.accessionNumber)
        studyID = attributes.string(.studyID)
    }
}

/// A PDF Facet made (the comparison report) as Encapsulated PDF (1.2.840.10008.5.1.4.1.1.104.1), Modality DOC, in
/// `context`'s study: Conversion Type WSD (a workstation made it), Burned In Annotation YES (the page names the
/// patient), the instances it was derived from in the Source Instance Sequence.
public enum EncapsulatedPDF {
    public static let sopClass = "1.2.840.10008.5.1.4.1.1.104.1"

    public static func make(
        _ pdf: Data, title: String, context: InstanceContext, seriesNumber: Int, sources: [MeshConverter.Source]
    ) throws(DICOMCodecError) -> PreparedInstance {
        try MeshConverter.checkSize(pdf)
        var dataset = context.baseDataset(
            sopClassUID: sopClass, sopInstanceUID: context.uids.make(), seriesInstanceUID: context.uids.make(),
            modality: "DOC", seriesNumber: seriesNumber, instanceNumber: 1)
        dataset.set(.manufacturer, .LO, Facet.manufacturer)
        dataset.set(.softwareVersions, .LO, "Facet \(context.softwareVersion)")
        dataset.set(Tag(0x0008, 0x0064), .CS, "WSD")  // Conversion Type
        dataset.set(.contentDate, .DA, context.nowDate)
        dataset.set(.contentTime, .TM, context.nowTime)
        dataset.set(.acquisitionDateTime, .DT, strings: [])
        dataset.set(Tag(0x0028, 0x0301), .CS, "YES")  // Burned In Annotation: the page names the patient
        dataset.set(.documentTitle, .ST, title)
        dataset.set(.conceptNameCodeSequence, sequence: [])
        dataset.set(.mimeTypeOfEncapsulatedDocument, .LO, "application/pdf")
        // Source Instance Sequence: Type 1C, present only when the document was made from other instances (a scanned
        // consent form was not).
        if !sources.isEmpty { dataset.set(Tag(0x0042, 0x0013), sequence: sources.map(\.referenceItem)) }
        dataset.set(DataElement(.encapsulatedDocument, .OB, .bytes(pdf)))
        dataset.set(DataElement(.encapsulatedDocumentLength, .UL, .unsigned([UInt64(pdf.count)])))
        return PreparedInstance(dataset: dataset, transferSyntaxUID: UID.explicitVRLittleEndian, notes: [])
    }
}
