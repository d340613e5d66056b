import DICOMCodec
import DICOMCore
import Foundation

/// A signed consent form as an Encapsulated PDF in the patient's record: a study of its own ("Consent form"), the
/// patient's identity as the archive knows it, Conversion Type SD (a scanned document), Burned In Annotation YES
/// (the form names the patient).
public enum ConsentForm {
    /// Checks the bytes are a PDF and wraps them; returns the new SOP Instance UID and the Part 10 bytes.
    public static func make(_ pdf: Data, patient: PatientSummary, title: String) throws(ArchiveError)
        -> (sopInstanceUID: String, part10: Data)
    {
        guard pdf.count >= 8, pdf.prefix(5) == Data("%PDF-".utf8) else {
            throw ArchiveError(.unsupportedMediaType, "the signed form must be a PDF (it does not start with %PDF-)")
        }
        var metadata = ClinicalMetadata()
        metadata.patientID = patient.patientID
        metadata.patientName = patient.name
        metadata.patientBirthDate = patient.birthDate?.replacingOccurrences(of: "-", with: "")
        metadata.patientSex = patient.sex
        metadata.studyDescription = "Consent form"
        metadata.seriesDescription = title
        do {
            let uids = try UIDGenerator()
            var prepared = try EncapsulatedPDF.make(
                pdf, title: title, context: InstanceContext(metadata: metadata, uids: uids), seriesNumber: 1,
                sources: [])
            prepared.dataset.set(Tag(0x0008, 0x0064), .CS, "SD")  // Conversion Type: scanned document
            if let issuer = patient.issuer { prepared.dataset.set(Tag(0x0010, 0x0021), .LO, issuer) }
            let uid = prepared.dataset.string(.sopInstanceUID) ?? ""
            return (uid, try Part10.encode(prepared.dataset, transferSyntax: prepared.transferSyntaxUID))
        } catch let error as DICOMCodecError {
            throw ArchiveError(.unprocessable, "the signed form cannot be stored: \(error.message)")
        } catch {
            throw ArchiveError(.io, "UIDs for the signed form cannot be made")
        }
    }
}
