import Foundation
import HTTPTypes
import Hummingbird

/// The first step of every request: an id for it (the client's `X-Request-ID` when it is a short token, otherwise
/// a new one), kept in the context for the log and the audit event and echoed in the answer.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = FacetRequestContext

    static let header = HTTPField.Name("X-Request-ID")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        var context = context
        if let given = request.headers[Self.header], (1...64).contains(given.utf8.count),
            given.utf8.allSatisfy({
                $0 == 0x2D || $0 == 0x5F || $0 == 0x2E || (0x30...0x39).contains($0)
                    || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
            })
        {
            context.requestID = given
        } else {
            context.requestID = UUID().uuidString.lowercased()
        }
        context.audit.requestID = context.requestID
        var response = try await next(request, context)
        response.headers[Self.header] = context.requestID
        return response
    }
}
