import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird

/// QIDO-RS (PS3.18 10.6): the six search resources, answered from the index alone.
struct QIDORoutes {
    let services: ServerServices

    func add(to router: Router<FacetRequestContext>) {
        router.get("/dicomweb/studies") { request, context in
            try await search(request, context, level: .study)
        }
        router.get("/dicomweb/series") { request, context in
            try await search(request, context, level: .series)
        }
        router.get("/dicomweb/instances") { request, context in
            try await search(request, context, level: .instance)
        }
        router.get("/dicomweb/studies/:study/series") { request, context in
            try await search(request, context, level: .series, study: RequestParts.uid(context, "study"))
        }
        router.get("/dicomweb/studies/:study/instances") { request, context in
            try await search(request, context, level: .instance, study: RequestParts.uid(context, "study"))
        }
        router.get("/dicomweb/studies/:study/series/:series/instances") { request, context in
            try await search(
                request, context, level: .instance, study: RequestParts.uid(context, "study"),
                series: RequestParts.uid(context, "series"))
        }
    }

    func search(
        _ request: Request, _ context: FacetRequestContext, level: QueryLevel, study: String? = nil,
        series: String? = nil
    ) async throws -> Response {
        let resource = SearchService.Resource(level: level, study: study, series: series)
        let note = context.audit
        note.action = "QIDO \(resource.level)"
        note.studyUID = resource.study
        if let series = resource.series { note.seriesUIDs = [series] }
        let vary = RequestParts.varyAccept
        // Negotiate first: 406 before any work.
        guard let format = Negotiation.datasetFormat(RequestParts.accept(request)) else {
            return Responses.failure(
                HTTPFailure(.notAcceptable, "QIDO-RS answers application/dicom+json or multipart/related XML"),
                extra: vary)
        }
        try await services.authorize(context, .search)
        let principal = try ServerServices.principal(context)
        let scope = try await services.identity.searchScope(for: principal)
        let query: Query
        do {
            query = try Query.parse(try RequestParts.queryItems(request))
        } catch let error as DICOMCoreError {
            return Responses.failure(HTTPFailure(.badRequest, error.message), extra: vary)
        }
        let tenant = try services.tenant(context)
        let result = try await tenant.search.search(query, resource, visible: scope.visible)
        var answered = Set<String>()
        note.resultStudyUIDs = result.datasets.compactMap { $0.string(.studyInstanceUID) }.filter {
            answered.insert($0).inserted
        }
        // A search answering with a patient seen only under break-the-glass is emergency access too.
        let emergency = scope.emergency
        if !emergency.isEmpty {
            let studies = tenant.archive.index.catalog().studies
            note.emergency = answered.contains { uid in
                studies[uid].flatMap { services.identity.patient(of: $0, tenant: tenant.tenant) }.map(
                    emergency.contains)
                    ?? false
            }
        }
        var headers = vary
        var warnings: [String] = []
        if query.fuzzyMatching {
            warnings.append(
                services.urls.warning(
                    "The fuzzymatching parameter is not supported. Only literal matching has been performed."))
        }
        if result.truncated {
            warnings.append(services.urls.warning("There are additional results that can be requested"))
        }
        if !warnings.isEmpty { headers[.warning] = warnings.joined(separator: ", ") }
        if format == .xml {
            return Responses.multipart(
                type: "application/dicom+xml",
                parts: result.datasets.map { ("application/dicom+xml", nil, Data(DICOMXML.encode($0).utf8)) },
                extra: headers)
        }
        return Responses.text(DICOMJSON.encode(result.datasets), contentType: "application/dicom+json", extra: headers)
    }
}
