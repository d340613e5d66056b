/// The roles of Facet's accounts (issue 9 §3). People log in with a password and TOTP; machines use client
/// credentials.
public enum Role: String, CaseIterable, Sendable, Codable, Hashable, CustomStringConvertible {
    case frontDesk = "front-desk"
    case medicalAssistant = "medical-assistant"
    case nurse
    case physician
    case practiceManager = "practice-manager"
    case systemAdmin = "system-admin"
    case device
    case integration
    case auditor

    /// Service accounts (capture stations, EMRs) authenticate with a client id and secret, never interactively.
    public var isService: Bool { self == .device || self == .integration }

    public var description: String { rawValue }
}
