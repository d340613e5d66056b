/// What a request does, as the access policy sees it. A route maps to exactly one action.
public enum AccessAction: String, CaseIterable, Sendable, Hashable, CustomStringConvertible {
    /// QIDO-RS and other searches: the answer holds only what `read` would allow, patient by patient.
    case search
    /// Viewing images or metadata of a patient (WADO-RS, rendered, thumbnails, originals).
    case read
    /// STOW-RS and uploads.
    case store
    /// Soft delete of a study, series or instance.
    case delete
    /// Users and settings. Never implies seeing PHI.
    case admin
    /// Reading or exporting the audit trail.
    case auditRead = "audit-read"
    /// Opening one patient outside one's care team for a limited time, with a reason.
    case breakGlass = "break-glass"
    /// Changing a patient's care team.
    case careTeamWrite = "care-team-write"
    /// The metrics endpoint.
    case metrics
    /// Writing a patient's clinic records (issue 12): registrations, treatments, tags, annotation layers.
    case recordWrite = "record-write"
    /// Recording or withdrawing a patient's consent.
    case consentWrite = "consent-write"
    /// Exporting consented, watermarked photos for marketing (across the clinic's patients).
    case marketingExport = "marketing-export"
    /// Making or revoking a share link to a patient's photos or comparison.
    case share
    /// The retention policy, the list of records due for disposal, legal holds.
    case retention

    public var description: String { rawValue }
}
