import Foundation

/// Emergency access: one user of a tenant may view one patient outside the care team until `end`. The reason is
/// kept sealed (it may mention the patient).
public struct BreakGlassGrant: Sendable, Hashable {
    public var id: String
    public var tenant: String
    public var username: String
    public var patient: PatientKey
    public var reason: String
    public var start: Date
    public var end: Date

    public init(
        id: String = UUID().uuidString.lowercased(), tenant: String, username: String, patient: PatientKey,
        reason: String, start: Date, end: Date
    ) {
        self.id = id
        self.tenant = tenant
        self.username = username
        self.patient = patient
        self.reason = reason
        self.start = start
        self.end = end
    }

    public func isActive(at date: Date) -> Bool { start <= date && date < end }
}
