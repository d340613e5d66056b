/// What a request touches, resolved before the policy is asked: the tenant it belongs to and, when it concerns one
/// patient, that patient's key and how the principal stands to the patient.
public struct AccessResource: Sendable, Hashable {
    public var tenant: String
    /// Nil for tenant-wide resources (a search without a patient, users, settings, the audit trail) and for data
    /// that names no patient.
    public var patient: PatientKey?
    /// The principal is in the patient's care team.
    public var inCareTeam: Bool
    /// The principal holds an active break-the-glass grant for the patient.
    public var underBreakGlass: Bool

    public init(tenant: String, patient: PatientKey? = nil, inCareTeam: Bool = false, underBreakGlass: Bool = false) {
        self.tenant = tenant
        self.patient = patient
        self.inCareTeam = inCareTeam
        self.underBreakGlass = underBreakGlass
    }
}
