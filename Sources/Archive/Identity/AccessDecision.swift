/// The policy's answer. A server answers `deny` with 403 and `notFound` with 404, indistinguishable from absent.
public enum AccessDecision: Sendable, Hashable {
    case allow
    /// Refused within the principal's tenant; the reason is for the audit trail (no PHI in it).
    case deny(reason: String)
    /// The resource belongs to another tenant.
    case notFound

    public var isAllowed: Bool { self == .allow }
}
