import DICOMCore
import Foundation

/// A patient's consent (issue 12 §2): clinical, marketing (for listed channels) or disclosure to another provider;
/// covering all the patient's photos, one treatment's, or listed instances; signed on a day by someone, possibly
/// with the signed form stored as an Encapsulated PDF in the patient's record; ending when it expires or is
/// withdrawn. The clinical record never depends on it: only what leaves the clinic does.
public struct Consent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case clinical, marketing, disclosure
    }

    public enum Channel: String, Codable, Sendable, CaseIterable {
        case website, social, gallery, education, conference, publication
    }

    /// What the consent covers.
    public enum Scope: Sendable, Equatable, Codable {
        case all
        case instances([String])
        case treatment(String)

        public init(from decoder: any Decoder) throws {
            if let text = try? decoder.singleValueContainer().decode(String.self), text == "all" {
                self = .all
                return
            }
            let fields = try decoder.container(keyedBy: Keys.self)
            if let uids = try fields.decodeIfPresent([String].self, forKey: .instances) {
                self = .instances(uids)
            } else {
                self = .treatment(try fields.decode(String.self, forKey: .treatment))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            switch self {
            case .all:
                var single = encoder.singleValueContainer()
                try single.encode("all")
            case .instances(let uids):
                var fields = encoder.container(keyedBy: Keys.self)
                try fields.encode(uids, forKey: .instances)
            case .treatment(let id):
                var fields = encoder.container(keyedBy: Keys.self)
                try fields.encode(id, forKey: .treatment)
            }
        }

        enum Keys: String, CodingKey { case instances, treatment }
    }

    public struct Withdrawal: Codable, Sendable, Equatable {
        /// When it was withdrawn (an instant: from then on nothing leaves under it).
        public var date: Date
        public var by: String

        public init(date: Date, by: String) {
            self.date = date
            self.by = by
        }
    }

    public var kind: Kind
    public var channels: [Channel]
    public var scope: Scope
    public var signer: String
    /// `YYYY-MM-DD`: the consent holds from the start of this day (UTC).
    public var signedDate: String
    /// `YYYY-MM-DD`: the last day it holds (UTC), nil for no end.
    public var expires: String?
    /// The provider a disclosure is to.
    public var recipient: String?
    /// The SOP Instance UID of the signed form (Encapsulated PDF) in the patient's record.
    public var form: String?
    public var withdrawal: Withdrawal?

    public init(
        kind: Kind, channels: [Channel], scope: Scope, signer: String, signedDate: String, expires: String? = nil,
        recipient: String? = nil, form: String? = nil, withdrawal: Withdrawal? = nil
    ) {
        self.kind = kind
        self.channels = channels
        self.scope = scope
        self.signer = signer
        self.signedDate = signedDate
        self.expires = expires
        self.recipient = recipient
        self.form = form
        self.withdrawal = withdrawal
    }

    /// Whether the consent holds at `time`: signed, not expired, not withdrawn.
    public func isActive(at time: Date) -> Bool {
        guard let start = ClinicTerms.startOfDay(signedDate), time >= start else { return false }
        if let expires, let end = ClinicTerms.startOfDay(expires), time >= end.addingTimeInterval(86_400) {
            return false
        }
        if let withdrawal, time >= withdrawal.date { return false }
        return true
    }

    /// Whether the consent covers a photo (of its patient: the caller matches the patient).
    public func covers(instance sopInstanceUID: String, treatment: String?) -> Bool {
        switch scope {
        case .all: true
        case .instances(let uids): uids.contains(sopInstanceUID)
        case .treatment(let id): treatment == id
        }
    }

    /// Reads and checks a request body: `{"kind", "channels", "scope", "signer", "signedDate", "expires"?,
    /// "recipient"?}` (the signed form is attached by the caller).
    public static func decode(json: Data) throws(ArchiveError) -> Consent {
        let fields = try ClinicJSON.object(
            json, what: "a consent",
            allowed: ["kind", "channels", "scope", "signer", "signedDate", "expires", "recipient", "form"],
            limit: 24 << 20)
        guard let kindText = try ClinicJSON.string(fields, "kind"), let kind = Kind(rawValue: kindText) else {
            throw ArchiveError(.invalidInput, "kind must be clinical, marketing or disclosure")
        }
        var channels: [Channel] = []
        for name in try ClinicJSON.strings(fields["channels"], field: "channels", limit: 16) {
            guard let channel = Channel(rawValue: name.lowercased()) else {
                let known = Channel.allCases.map(\.rawValue).joined(separator: ", ")
                throw ArchiveError(.invalidInput, "channels are among: \(known)")
            }
            if !channels.contains(channel) { channels.append(channel) }
        }
        if kind == .marketing && channels.isEmpty {
            throw ArchiveError(.invalidInput, "a marketing consent names its channels")
        }
        if kind != .marketing && !channels.isEmpty {
            throw ArchiveError(.invalidInput, "only a marketing consent has channels")
        }
        let scope: Scope
        switch fields["scope"] {
        case nil, is NSNull: scope = .all
        case let text as String where text == "all": scope = .all
        case let object as [String: Any] where object.count == 1:
            if let uids = object["instances"] as? [String], !uids.isEmpty, uids.count <= 10_000,
                uids.allSatisfy({ UID.isValid($0) })
            {
                scope = .instances(Array(Set(uids)).sorted())
            } else if let id = ClinicTerms.recordID(object["treatment"] as? String) {
                scope = .treatment(id)
            } else {
                throw ArchiveError(
                    .invalidInput, "scope is \"all\", {\"instances\": [SOP Instance UIDs]} or {\"treatment\": id}")
            }
        default:
            throw ArchiveError(
                .invalidInput, "scope is \"all\", {\"instances\": [SOP Instance UIDs]} or {\"treatment\": id}")
        }
        guard let signer = try ClinicTerms.text(try ClinicJSON.string(fields, "signer"), field: "signer", limit: 200),
            let signed = try ClinicJSON.string(fields, "signedDate")
        else { throw ArchiveError(.invalidInput, "a consent needs \"signer\" and \"signedDate\" (YYYY-MM-DD)") }
        let signedDate = try ClinicTerms.date(signed, field: "signedDate")
        var expires: String?
        if let text = try ClinicJSON.string(fields, "expires") {
            let day = try ClinicTerms.date(text, field: "expires")
            if day < signedDate { throw ArchiveError(.invalidInput, "expires is before signedDate") }
            expires = day
        }
        let recipient = try ClinicTerms.text(try ClinicJSON.string(fields, "recipient"), field: "recipient", limit: 200)
        if kind == .disclosure && recipient == nil {
            throw ArchiveError(.invalidInput, "a disclosure consent names its recipient (the other provider)")
        }
        return Consent(
            kind: kind, channels: channels, scope: scope, signer: signer, signedDate: signedDate, expires: expires,
            recipient: recipient)
    }
}

/// The one rule for photos leaving the clinic for marketing (issue 12 §2): a photo may leave for channel C at time
/// T only if it is tagged marketing-approved and an active marketing consent of its patient covering that photo and
/// C exists at T. Every export and every marketing use asks this function and nothing else.
public enum ConsentRule {
    /// What the rule needs to know of a photo.
    public struct Photo: Sendable, Equatable {
        public var sopInstanceUID: String
        public var patient: String
        public var quality: InstanceTags.Quality?
        public var treatment: String?

        public init(sopInstanceUID: String, patient: String, quality: InstanceTags.Quality?, treatment: String?) {
            self.sopInstanceUID = sopInstanceUID
            self.patient = patient
            self.quality = quality
            self.treatment = treatment
        }
    }

    /// A consent as it is kept: its id and its patient's key.
    public struct Held: Sendable, Equatable {
        public var id: String
        public var patient: String
        public var consent: Consent

        public init(id: String, patient: String, consent: Consent) {
            self.id = id
            self.patient = patient
            self.consent = consent
        }
    }

    public struct Decision: Sendable, Equatable {
        public var allowed: Bool
        /// The consents that allow it (empty when refused).
        public var consentIDs: [String]
        /// Why not, in words (no PHI).
        public var reason: String?
    }

    public static func decide(_ photo: Photo, channel: Consent.Channel, at time: Date, consents: [Held]) -> Decision {
        guard photo.quality == .marketingApproved else {
            return Decision(allowed: false, consentIDs: [], reason: "the photo is not tagged marketing-approved")
        }
        let allowing = consents.filter { held in
            held.patient == photo.patient && held.consent.kind == .marketing
                && held.consent.channels.contains(channel) && held.consent.isActive(at: time)
                && held.consent.covers(instance: photo.sopInstanceUID, treatment: photo.treatment)
        }
        guard !allowing.isEmpty else {
            return Decision(
                allowed: false, consentIDs: [],
                reason: "no active marketing consent of the patient covers this photo for \(channel.rawValue)")
        }
        return Decision(allowed: true, consentIDs: allowing.map(\.id).sorted(), reason: nil)
    }
}
