import Foundation
import HTTPTypes
import Hummingbird

/// A known path asked with a method it does not take: 405 with `Allow` (RFC 9110 15.5.6), not the router's 404.
/// Built from the router's own routes once every route is in (so `Allow` cannot drift from them): each path gets a
/// route for every method it lacks, behind the same middleware as the rest, so the answer is audited and comes after
/// authentication — a protected path asked without a token is 401 whatever the method (as most servers behind
/// authentication do: nothing about the path is told to an anonymous client), an open one (login, health) is 405 at
/// once. An `OPTIONS` on a path without its own `OPTIONS` route (the capabilities document has one) answers 204
/// with `Allow` (RFC 9110 9.3.7). HEAD is left to the router where GET exists (it answers HEAD from GET). Paths
/// the router does not know stay 404; so do methods outside HTTP's own (RFC 9110, and PATCH).
enum AllowedMethods {
    static let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .delete, .patch, .options, .trace]

    /// Call after the last route is added.
    static func add(to router: Router<FacetRequestContext>) {
        var paths: [String: (path: RouterPath, methods: Set<HTTPRequest.Method>)] = [:]
        for route in router.routes {
            paths[route.path.description, default: (route.path, [])].methods.insert(route.method)
        }
        for (path, registered) in paths.values {
            var allowed = registered.union([.options])
            if registered.contains(.get) { allowed.insert(.head) }
            let allow = allowHeader(allowed)
            for method in methods where !allowed.contains(method) {
                router.on(path, method: method) { request, _ in
                    var headers = HTTPFields()
                    headers[.allow] = allow
                    return Responses.failure(
                        HTTPFailure(.methodNotAllowed, "\(request.method) is not allowed here; allowed: \(allow)"),
                        extra: headers)
                }
            }
            if !registered.contains(.options) {
                router.on(path, method: .options) { _, _ in
                    var headers = HTTPFields()
                    headers[.allow] = allow
                    return Response(status: .noContent, headers: headers)
                }
            }
        }
    }

    /// The methods in the usual order (GET, HEAD, POST, ...), any others after them.
    static func allowHeader(_ allowed: Set<HTTPRequest.Method>) -> String {
        let known = methods.filter(allowed.contains)
        let others = allowed.subtracting(methods).map(\.rawValue).sorted()
        return (known.map(\.rawValue) + others).joined(separator: ", ")
    }
}
