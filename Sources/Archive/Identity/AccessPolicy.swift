/// The one place that decides whether a principal may do an action on a resource (issue 9 §3). Deny by default:
/// every role's permissions are listed here and nowhere else.
public struct AccessPolicy: Sendable {
    /// Whose patients a role may view.
    enum ViewScope {
        case none
        /// Patients of the principal's care team, and patients under the principal's break-the-glass grant.
        case own
        /// Every patient of the tenant.
        case all
    }

    public init() {}

    static func viewScope(_ role: Role) -> ViewScope {
        switch role {
        case .medicalAssistant: .own
        case .nurse, .physician, .practiceManager, .integration: .all
        case .frontDesk, .systemAdmin, .device, .auditor: .none
        }
    }

    static func roles(for action: AccessAction) -> Set<Role> {
        switch action {
        case .search, .read: Set(Role.allCases.filter { viewScope($0) != .none })
        case .store: [.medicalAssistant, .nurse, .physician, .device]
        case .delete: [.physician]
        case .admin, .metrics: [.practiceManager, .systemAdmin]
        case .auditRead: [.auditor, .practiceManager]
        case .breakGlass: [.medicalAssistant]
        case .careTeamWrite: [.physician, .practiceManager]
        case .recordWrite: [.medicalAssistant, .nurse, .physician]
        case .consentWrite: [.nurse, .physician, .practiceManager]
        case .marketingExport: [.physician, .practiceManager]
        case .share: [.nurse, .physician, .practiceManager]
        case .retention: [.practiceManager]
        }
    }

    /// The part of the decision that needs no resource: the tenant and whether the role may ever do `action`.
    public func decideRole(_ principal: Principal, _ action: AccessAction, tenant: String) -> AccessDecision {
        guard principal.tenant == tenant else { return .notFound }
        guard Self.roles(for: action).contains(principal.role) else {
            return .deny(reason: "role \(principal.role) may not \(action)")
        }
        return .allow
    }

    public func decide(_ principal: Principal, _ action: AccessAction, _ resource: AccessResource) -> AccessDecision {
        // Another tenant's data does not exist for this principal, whatever the role.
        guard principal.tenant == resource.tenant else { return .notFound }
        guard Self.roles(for: action).contains(principal.role) else {
            return .deny(reason: "role \(principal.role) may not \(action)")
        }
        switch action {
        case .search, .read, .recordWrite, .consentWrite, .share:
            guard Self.viewScope(principal.role) == .own else { return .allow }
            guard resource.patient != nil else {
                // A search across the tenant is answered patient by patient; anything else must name its patient.
                return action == .search ? .allow : .deny(reason: "no patient to check against the care team")
            }
            return resource.inCareTeam || resource.underBreakGlass
                ? .allow : .deny(reason: "patient is not in the care team of \(principal.username)")
        case .breakGlass, .careTeamWrite:
            return resource.patient == nil ? .deny(reason: "\(action) names one patient") : .allow
        case .store, .delete, .admin, .auditRead, .metrics, .marketingExport, .retention:
            return .allow
        }
    }
}
