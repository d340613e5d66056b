import Crypto
import Foundation

/// Verifies the access tokens of a clinic's own OpenID Connect identity provider (Keycloak, Entra ID, Okta, ...):
/// JWTs signed with RS256 or ES256 by a key of the provider's JWKS, for Facet's audience.
///
/// Checked: the header `alg` is RS256 or ES256 and matches the type of the key its `kid` names (`none`, HS*, PS*
/// and every other algorithm are refused before a key is touched; an RSA key never verifies an ES256 token nor an
/// EC key an RS256 one); no `crit`; the signature over the exact bytes received; `iss` exactly the provider's;
/// `aud` (a string or a list) holding Facet's audience; `exp` present and `nbf`/`iat` not in the future, each
/// with `clockSkew`; a username (`preferred_username`, else `sub`) that is a valid Facet username, taken as it
/// is; exactly one Facet role in the role claim; the tenant claim, one of `Settings.tenants`, when one is
/// configured; a lifetime of at most `Settings.maximumLifetime`; the `jti` not revoked; no *disabled* local account
/// of the same tenant and username.
///
/// Unlike Facet's own tokens these have no session in the account store, so no idle timeout applies: the
/// provider's `exp` (at most `maximumLifetime` away) is their limit. Logout revokes the token's `jti` (a token
/// without one cannot be revoked). An unknown `kid`, or a key set older than `maximumKeySetAge`, fetches the set
/// again, at most once per `refetchInterval` and by one caller at a time (the others go on with the keys there
/// are); a failed fetch keeps the keys there were. Calls block (a database read, sometimes a fetch of up to
/// `JSONWebKeySetSource.timeout`): a server runs them on its token pool.
public final class OIDCTokenVerifier: @unchecked Sendable {
    public struct Settings: Sendable, Hashable {
        /// The provider's `iss`, compared exactly.
        public var issuer: String
        /// What `aud` must contain (the client id or resource Facet is registered as).
        public var audience: String
        public var keySet: JSONWebKeySetSource
        /// The claim naming the role: a string, or a list holding exactly one Facet role name.
        public var roleClaim: String
        /// The claim naming the tenant; nil puts every principal in `defaultTenant`.
        public var tenantClaim: String?
        /// The tenants the provider may name (with `tenantClaim`): one clinic's provider must not speak for another
        /// clinic of the same server, and no token creates a clinic the operator did not list.
        public var tenants: Set<String>
        /// The longest a provider token may live (`exp` − now, and `exp` − `iat`): Facet's own `session-max-hours`.
        public var maximumLifetime: TimeInterval

        public init(
            issuer: String, audience: String, keySet: JSONWebKeySetSource, roleClaim: String = "role",
            tenantClaim: String? = nil, tenants: Set<String> = [], maximumLifetime: TimeInterval = 12 * 3600
        ) {
            self.issuer = issuer
            self.audience = audience
            self.keySet = keySet
            self.roleClaim = roleClaim
            self.tenantClaim = tenantClaim
            self.tenants = tenants
            self.maximumLifetime = maximumLifetime
        }
    }

    /// Provider tokens carry more than Facet's own (group lists, say); longer ones are refused before parsing.
    public static let maximumTokenLength = 8192
    /// Tolerated difference between the provider's clock and Facet's, for `exp`, `nbf` and `iat`.
    public static let clockSkew: TimeInterval = 60
    /// An unknown `kid` fetches the key set again only if the last fetch is at least this old.
    public static let refetchInterval: TimeInterval = 60
    /// A key set older than this is fetched again at the next token, so that a key the provider withdrew (rotated
    /// out, compromised) stops verifying within this time, without a restart.
    public static let maximumKeySetAge: TimeInterval = 15 * 60
    public static let defaultTenant = "default"

    public let settings: Settings
    private let store: any AccountStore
    private let refetched: (@Sendable (Result<Int, ArchiveError>) -> Void)?

    private let verified = VerifiedTokenCache<OIDCClaims>()
    private let condition = NSCondition()
    private var keySet: JSONWebKeySet
    /// Counts replacements of `keySet`: a cached verification of an older set no longer counts.
    private var generation = 0
    private var lastFetch: Date
    private var fetching = false
    private var fetches = 1

    /// Loads the key set (blocking): `.invalidInput` or `.io` with a one-line reason when it cannot be read or holds
    /// no usable key. `refetched` hears of every later fetch: the number of keys, or why it failed.
    public init(
        settings: Settings, store: any AccountStore, now: Date = Date(),
        refetched: (@Sendable (Result<Int, ArchiveError>) -> Void)? = nil
    ) throws(ArchiveError) {
        self.settings = settings
        self.store = store
        self.refetched = refetched
        keySet = try settings.keySet.load()
        lastFetch = now
    }

    /// How many keys of the set are usable.
    public var keyCount: Int { condition.withLock { keySet.keys.count } }

    /// How often the key set was read, the first load included (for tests).
    var keySetFetches: Int { condition.withLock { fetches } }

    /// The principal a token stands for, or `.invalidToken` with the reason (safe to log: no PHI, no token bytes).
    public func verify(_ token: String, now: Date = Date()) async throws(ArchiveError) -> Principal {
        let (principal, _) = try await checkedOnPool(token, now: now)
        if let tokenID = principal.tokenID, try await store.isRevoked(tokenID) { throw invalid("token revoked") }
        if try await store.accountStatus(tenant: principal.tenant, username: principal.username)?.status == .disabled {
            throw invalid("the local account of this username is disabled")
        }
        return principal
    }

    /// Revokes a valid token's `jti` until it could no longer be accepted anyway (logout). `.invalidInput` for a
    /// token without `jti`: it stays valid until it expires.
    public func revoke(_ token: String, now: Date = Date()) async throws(ArchiveError) {
        let (principal, acceptedUntil) = try await checkedOnPool(token, now: now)
        guard let tokenID = principal.tokenID else {
            throw ArchiveError(
                .invalidInput, "this token has no jti and cannot be revoked; it stays valid until it expires")
        }
        try await store.revokeToken(tokenID, expires: acceptedUntil)
    }

    /// `verifiedPrincipal` on the identity pool: it may fetch the provider's key set (a blocking download).
    private func checkedOnPool(_ token: String, now: Date) async throws(ArchiveError) -> (Principal, Date) {
        try await BlockingPool.identity.runTyped(alwaysQueue: false) {
            [self] () throws(ArchiveError) -> (Principal, Date) in
            try verifiedPrincipal(token, now: now)
        }
    }

    /// The revocation id of a provider's `jti`: hashed with the issuer, so that it is short and can never equal the
    /// id of one of Facet's own tokens (those are UUIDs).
    static func tokenID(issuer: String, jti: String) -> String {
        "oidc-" + Formatting.hex(SHA256.hash(data: Data("\(issuer)\u{0}\(jti)".utf8)).prefix(16))
    }

    /// Header, key, signature and claims checks, without the account store; also the last moment the token is
    /// accepted (`exp` plus the skew). A token verified before with the current key set is not parsed or its
    /// signature checked again; its claims are.
    func verifiedPrincipal(_ token: String, now: Date) throws(ArchiveError) -> (Principal, Date) {
        guard token.utf8.count <= Self.maximumTokenLength else { throw invalid("token too long") }
        // A set 15 minutes old is fetched again first, so that a withdrawn key stops verifying remembered tokens too.
        refreshKeySet(unknownKeyID: false, now: now)
        let cacheKey = VerifiedTokenCache<OIDCClaims>.key(token)
        let current = condition.withLock { generation }
        if let claims = verified.value(for: cacheKey, generation: current, now: now) {
            return try checked(claims, now: now)
        }
        let (claims, checkedWith) = try signedClaims(token, now: now)
        let (principal, acceptedUntil) = try checked(claims, now: now)
        verified.insert(claims, for: cacheKey, generation: checkedWith, expires: acceptedUntil, now: now)
        return (principal, acceptedUntil)
    }

    /// Header, key and signature checks, and the claims as they are, with the generation of the key set used.
    private func signedClaims(_ token: String, now: Date) throws(ArchiveError) -> (OIDCClaims, Int) {
        let parts = try JSONWebToken.Parts(token, maximumLength: Self.maximumTokenLength)
        let header = try JSONWebToken.Header(parts.header)
        // The algorithm list is Facet's: anything else is refused before any key is looked up.
        guard let algorithm = header.alg.flatMap(JSONWebKey.Algorithm.init(rawValue:)) else {
            throw invalid("token algorithm is not RS256 or ES256")
        }
        guard !header.hasCritical else { throw invalid("token has critical header parameters") }
        if let type = header.typ?.lowercased() {
            // RFC 9068 access tokens say `at+jwt`.
            guard type == "jwt" || type == "at+jwt" || type == "application/at+jwt" else {
                throw invalid("token type is not JWT")
            }
        }
        let (key, generation) = try key(id: header.kid, algorithm: algorithm, now: now)
        guard key.isValidSignature(parts.signature, for: parts.signingInput) else {
            throw invalid("token signature does not verify")
        }
        let claims = try OIDCClaims(parts.payload, roleClaim: settings.roleClaim, tenantClaim: settings.tenantClaim)
        return (claims, generation)
    }

    /// The claims checks that depend on the settings and the time, and the principal the claims name.
    private func checked(_ claims: OIDCClaims, now: Date) throws(ArchiveError) -> (Principal, Date) {
        guard claims.iss == settings.issuer else { throw invalid("token issuer is not accepted") }
        guard claims.audiences.contains(settings.audience) else { throw invalid("token audience is not accepted") }
        guard let expiry = claims.exp else { throw invalid("token has no expiry (exp)") }
        let seconds = now.timeIntervalSince1970
        // No longer-lived than Facet's own sessions (automatic logoff), which also keeps every date printable.
        guard expiry - seconds <= settings.maximumLifetime + Self.clockSkew,
            claims.iat.map({ expiry - $0 <= settings.maximumLifetime + Self.clockSkew }) ?? true
        else { throw invalid("token lives longer than session-max-hours") }
        guard seconds < expiry + Self.clockSkew else { throw invalid("token expired") }
        if let notBefore = claims.nbf, seconds < notBefore - Self.clockSkew { throw invalid("token not valid yet") }
        if let issued = claims.iat, seconds < issued - Self.clockSkew { throw invalid("token issued in the future") }
        if let jti = claims.jti, jti.isEmpty { throw invalid("malformed token claims") }
        let principal = Principal(
            tenant: try tenant(claims), username: try username(claims), role: try role(claims),
            tokenID: claims.jti.map { Self.tokenID(issuer: settings.issuer, jti: $0) },
            expires: Date(timeIntervalSince1970: expiry))
        return (principal, Date(timeIntervalSince1970: expiry + Self.clockSkew))
    }

    private func username(_ claims: OIDCClaims) throws(ArchiveError) -> String {
        let claim = claims.preferredUsername == nil ? "sub" : "preferred_username"
        guard let name = claims.preferredUsername ?? claims.sub else {
            throw invalid("token has neither preferred_username nor sub")
        }
        // Taken as it is: folding case could make two of the provider's users one of Facet's.
        guard Account.isValidUsername(name) else {
            throw invalid("token \(claim) is not a valid Facet username (a-z, 0-9, '.', '_', '-', '@'; at most 64)")
        }
        return name
    }

    private func role(_ claims: OIDCClaims) throws(ArchiveError) -> Role {
        guard let values = claims.roles else { throw invalid("token has no \(settings.roleClaim) claim") }
        let roles = Set(values.compactMap(Role.init(rawValue:)))
        guard let role = roles.first else { throw invalid("token \(settings.roleClaim) claim names no Facet role") }
        // Several would make the role depend on the order the provider lists them in.
        guard roles.count == 1 else {
            throw invalid("token \(settings.roleClaim) claim names more than one Facet role")
        }
        return role
    }

    private func tenant(_ claims: OIDCClaims) throws(ArchiveError) -> String {
        guard let claim = settings.tenantClaim else { return Self.defaultTenant }
        // With a tenant claim configured, a token without one is refused rather than put in the default tenant.
        guard let tenant = claims.tenant else { throw invalid("token has no \(claim) claim") }
        guard Account.isValidTenant(tenant) else { throw invalid("token \(claim) claim is not a valid tenant name") }
        guard settings.tenants.contains(tenant) else {
            throw invalid("token \(claim) claim names a tenant not in oidc-tenants")
        }
        return tenant
    }

    /// Fetches the key set again when it is due: for an unknown `kid`, or when the set is older than
    /// `maximumKeySetAge`, and then only if the last fetch is at least `refetchInterval` old. One caller fetches; the
    /// others go on with the keys there are (an unknown `kid` is refused at once): a slow provider holds one thread,
    /// not all. A failed fetch keeps the keys there were.
    private func refreshKeySet(unknownKeyID: Bool, now: Date) {
        condition.lock()
        // A clock that went back does not hold the next fetch off.
        let age = now < lastFetch ? .infinity : now.timeIntervalSince(lastFetch)
        guard !fetching, age >= Self.refetchInterval, unknownKeyID || age >= Self.maximumKeySetAge else {
            condition.unlock()
            return
        }
        fetching = true
        lastFetch = now
        fetches += 1
        condition.unlock()
        let fresh = Result { () throws(ArchiveError) in try settings.keySet.load() }
        condition.lock()
        fetching = false
        if case .success(let set) = fresh {
            keySet = set
            // Tokens remembered under the old set are checked again against the new one.
            generation += 1
        }
        condition.unlock()
        refetched?(fresh.map { $0.keys.count })
    }

    /// The key a token's `kid` names (after a fetch, when the `kid` is unknown and a fetch is due).
    private func key(id: String?, algorithm: JSONWebKey.Algorithm, now: Date) throws(ArchiveError)
        -> (JSONWebKey, Int)
    {
        var (lookup, current) = condition.withLock { (keySet.key(id: id, algorithm: algorithm), generation) }
        if case .unknownID = lookup {
            refreshKeySet(unknownKeyID: true, now: now)
            (lookup, current) = condition.withLock { (keySet.key(id: id, algorithm: algorithm), generation) }
        }
        switch lookup {
        case .found(let key): return (key, current)
        case .unknownID: throw invalid("token key id is not in the identity provider's key set")
        case .wrongAlgorithm: throw invalid("token algorithm does not match its key")
        case .ambiguous: throw invalid("token names no key id and the key set has more than one key")
        }
    }

    private func invalid(_ reason: String) -> ArchiveError { ArchiveError(.invalidToken, reason) }
}
