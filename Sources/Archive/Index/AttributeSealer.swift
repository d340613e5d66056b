import Crypto
import DICOMCore
import Foundation

/// The at-rest scheme of every index, whatever database holds it: attributes (names, birth dates, IDs, dates,
/// descriptions, file names, deletion reasons) are AES-256-GCM sealed under a key derived from the tenant's key,
/// with the row's UID as associated data, so a sealed value moved to another row fails; PatientID and
/// AccessionNumber also get keyed blind indexes (HMAC-SHA256 under a second derived key, 128 bits) for exact lookups
/// without decrypting. SQLite and PostgreSQL indexes both seal through this one type, so neither can store PHI in
/// the clear by forgetting to.
///
/// Where the archive has patient keys (`KeyHierarchy.patientKeys`), what belongs to one patient (study, series and
/// instance rows, metadata, originals, deletions, clinic records) is sealed under that patient's key instead, as
/// `"FP1" | key id (16 bytes) | AES-GCM combined`, so that destroying the patient's key (disposal) leaves every copy
/// of those rows unreadable. Rows sealed before patient keys existed (no prefix) stay readable under the tenant's key.
public struct AttributeSealer: @unchecked Sendable {
    private let sealingKey: SymmetricKey
    private let blindKey: SymmetricKey
    let keys: KeyHierarchy
    static let patientMagic = Data("FP1".utf8)

    public init(keys: KeyHierarchy) {
        self.keys = keys
        sealingKey = keys.tenantDerivedKey("facet index attributes v1")
        blindKey = keys.tenantDerivedKey("facet index blind v1")
    }

    /// The patient (keyed hash) of a study's attributes, nil without a Patient ID.
    public func patient(of study: Dataset) -> String? {
        guard let id = study.string(.patientID) else { return nil }
        return keys.patientKey(patientID: id, issuer: study.string(Tag(0x0010, 0x0021)))
    }

    /// Seals for the row `uid` of `patient`: under the patient's key where the archive has patient keys and the
    /// row has a patient, otherwise under the tenant's.
    public func seal(_ data: Data, uid: String, patient: String?) throws -> Data {
        guard let patient, let ring = keys.patientKeys else { return try seal(data, uid: uid) }
        let (id, key) = try ring.key(forPatient: patient)
        let box = try AES.GCM.seal(data, using: key, authenticating: Data(uid.utf8))
        guard let combined = box.combined, let idBytes = Formatting.bytes(hex: id), idBytes.count == 16 else {
            throw ArchiveError(.key, "index value cannot be sealed")
        }
        return Self.patientMagic + idBytes + combined
    }

    public func seal(_ dataset: Dataset, uid: String, patient: String?) throws -> Data {
        try seal(Data(DICOMJSON.encode(dataset).utf8), uid: uid, patient: patient)
    }

    /// Whether a sealed value is under a patient key that was destroyed (a disposed patient's row, in a backup made
    /// before the disposal): such a row is gone, not damaged.
    public func isErased(_ sealed: Data, uid: String) -> Bool {
        guard let id = Self.patientKeyID(of: sealed), let ring = keys.patientKeys, ring.key(id: id) == nil else {
            return false
        }
        return (try? openData(sealed, uid: uid)) == nil
    }

    /// The id of the patient key a sealed value names (nil for one sealed under the tenant's key).
    public static func patientKeyID(of sealed: Data) -> String? {
        guard sealed.count >= 3 + 16 + 28, sealed.prefix(3) == patientMagic else { return nil }
        return Formatting.hex(sealed.dropFirst(3).prefix(16))
    }

    /// A dataset as DICOM JSON, sealed for the row `uid`.
    public func seal(_ dataset: Dataset, uid: String) throws -> Data {
        try seal(Data(DICOMJSON.encode(dataset).utf8), uid: uid)
    }

    public func seal(_ data: Data, uid: String) throws -> Data {
        let box = try AES.GCM.seal(data, using: sealingKey, authenticating: Data(uid.utf8))
        guard let combined = box.combined else { throw ArchiveError(.key, "index value cannot be sealed") }
        return Data(combined)
    }

    public func openData(_ sealed: Data, uid: String) throws(ArchiveError) -> Data {
        if let id = Self.patientKeyID(of: sealed), let key = keys.patientKeys?.key(id: id),
            let box = try? AES.GCM.SealedBox(combined: sealed.dropFirst(19)),
            let opened = try? AES.GCM.open(box, using: key, authenticating: Data(uid.utf8))
        {
            return Data(opened)
        }
        // A tenant-sealed value whose random nonce happens to begin like a patient-sealed one falls through here.
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return Data(try AES.GCM.open(box, using: sealingKey, authenticating: Data(uid.utf8)))
        } catch {
            throw ArchiveError(.integrity, "an index row fails authentication (wrong key or altered)")
        }
    }

    public func open(_ sealed: Data, uid: String) throws(ArchiveError) -> Dataset {
        let data = try openData(sealed, uid: uid)
        do {
            return try DICOMJSON.decode(data)
        } catch {
            throw ArchiveError(.integrity, "an index row holds malformed attributes (\(error.message))")
        }
    }

    /// HMAC-SHA256 of the normalised value under the blind-index key, hex; nil for an empty value.
    public func blindIndex(_ field: String, _ value: String?) -> String? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(field)\u{0}\(value)".utf8), using: blindKey)
        return Formatting.hex(Data(mac).prefix(16))
    }

    /// An original's media type and file name, sealed for its instance.
    func sealOriginal(_ original: OriginalFile, uid: String, patient: String?) throws -> Data {
        var details: [String: String] = ["mediaType": original.mediaType]
        if let name = original.fileName { details["fileName"] = name }
        return try seal(
            try JSONSerialization.data(withJSONObject: details, options: [.sortedKeys]), uid: uid, patient: patient)
    }

    func openOriginal(_ sealed: Data, blob: BlobReference, uid: String) throws -> OriginalFile {
        let fields =
            (try JSONSerialization.jsonObject(with: try openData(sealed, uid: uid)) as? [String: String]) ?? [:]
        return OriginalFile(
            blob: blob, mediaType: fields["mediaType"] ?? "application/octet-stream", fileName: fields["fileName"])
    }

    /// A deletion's reason and actor, sealed for the deleted instance (its own context: `deleted:<uid>`).
    func sealDeletion(_ why: Deletion, uid: String, patient: String?) throws -> Data {
        let details = try JSONSerialization.data(
            withJSONObject: ["reason": why.reason, "actor": why.actor], options: [.sortedKeys])
        return try seal(details, uid: "deleted:\(uid)", patient: patient)
    }

    func openDeletion(_ sealed: Data, uid: String, date: Date) throws -> Deletion {
        let fields =
            (try JSONSerialization.jsonObject(with: try openData(sealed, uid: "deleted:\(uid)")) as? [String: String])
            ?? [:]
        return Deletion(reason: fields["reason"] ?? "", actor: fields["actor"] ?? "", date: date)
    }
}
