import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird

/// Treatments, tags and annotation layers (issue 12 §1), each a versioned clinic record: a change writes a new
/// version (`ETag: "N"`; send `If-Match: "N"` to refuse a lost update with 409), a deletion writes a version marked
/// deleted, and every version stays readable under `/versions`.
/// - `GET|POST /api/v1/patients/{patientID}/treatments`, `GET|PUT|DELETE .../treatments/{id}`, `.../{id}/versions`;
/// - `GET|PATCH /api/v1/instances/{sopInstanceUID}/tags`, `.../tags/versions` (tags live beside the instance: the
///   stored object is never rewritten, QIDO answers its own attributes);
/// - `GET|POST /api/v1/instances/{sopInstanceUID}/annotations`, `GET|PUT|DELETE .../annotations/{id}`,
///   `.../{id}/versions`.
/// Reading needs `read` on the patient, writing `record-write`.
struct RecordRoutes {
    let services: ServerServices
    var clinic: ClinicSupport { ClinicSupport(services: services) }

    func add(to router: Router<FacetRequestContext>) {
        router.get("/api/v1/patients/:patient/treatments") { request, context in try await treatments(request, context)
        }
        router.post("/api/v1/patients/:patient/treatments") { request, context in
            try await createTreatment(request, context)
        }
        router.get("/api/v1/patients/:patient/treatments/:id") { request, context in
            try await treatment(request, context)
        }
        router.put("/api/v1/patients/:patient/treatments/:id") { request, context in
            try await updateTreatment(request, context, delete: false)
        }
        router.delete("/api/v1/patients/:patient/treatments/:id") { request, context in
            try await updateTreatment(request, context, delete: true)
        }
        router.get("/api/v1/patients/:patient/treatments/:id/versions") { request, context in
            try await treatmentVersions(request, context)
        }
        router.get("/api/v1/instances/:instance/tags") { _, context in try await tags(context) }
        router.patch("/api/v1/instances/:instance/tags") { request, context in try await patchTags(request, context) }
        router.get("/api/v1/instances/:instance/tags/versions") { _, context in try await tagVersions(context) }
        router.get("/api/v1/instances/:instance/annotations") { _, context in try await annotations(context) }
        router.post("/api/v1/instances/:instance/annotations") { request, context in
            try await writeAnnotation(request, context, create: true)
        }
        router.get("/api/v1/instances/:instance/annotations/:id") { _, context in try await annotation(context) }
        router.put("/api/v1/instances/:instance/annotations/:id") { request, context in
            try await writeAnnotation(request, context, create: false)
        }
        router.delete("/api/v1/instances/:instance/annotations/:id") { request, context in
            try await deleteAnnotation(request, context)
        }
        router.get("/api/v1/instances/:instance/annotations/:id/versions") { _, context in
            try await annotationVersions(context)
        }
    }

    // MARK: treatments

    func treatments(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "treatments read"
        let summary = try await clinic.patient(request, context, .read)
        context.audit.action = "treatments read (patient \(summary.key.hex))"
        let list = try await clinic.records(context).list(.treatment, patient: summary.key.hex, as: Treatment.self)
            .sorted { ($0.value.date, $0.id) < ($1.value.date, $1.id) }
        return try ClinicSupport.json(list.map { ClinicOut.Treatment($0) })
    }

    func createTreatment(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "treatment create"
        let summary = try await clinic.patient(request, context, .recordWrite)
        let treatment = try Treatment.decode(json: try await ClinicSupport.body(request))
        let id = ClinicTerms.newID()
        context.audit.action = "treatment create (patient \(summary.key.hex), treatment \(id))"
        let written = try await clinic.records(context).write(
            .treatment, id: id, patient: summary.key.hex, value: treatment, actor: context.audit.actor,
            expectedVersion: 0)
        let location = "\(services.urls.base)\(request.uri.path)/\(id)"
        return try ClinicSupport.json(
            ClinicOut.Treatment(written), status: .created,
            extra: ClinicSupport.versionHeader(written.version, location: location))
    }

    /// The treatment of the URL, of the URL's patient (404 for another patient's).
    func namedTreatment(_ request: Request, _ context: FacetRequestContext, _ action: AccessAction) async throws
        -> (PatientSummary, Versioned<Treatment>)
    {
        let summary = try await clinic.patient(request, context, action)
        guard let id = ClinicTerms.recordID(context.parameters.get("id")),
            let record = try await clinic.records(context).current(.treatment, id: id, as: Treatment.self),
            record.patient == summary.key.hex
        else { throw HTTPFailure(.notFound, "no such treatment") }
        return (summary, record)
    }

    func treatment(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "treatment read"
        let (summary, record) = try await namedTreatment(request, context, .read)
        context.audit.action = "treatment read (patient \(summary.key.hex), treatment \(record.id))"
        guard !record.deleted else { throw HTTPFailure(.gone, "the treatment was deleted") }
        return try ClinicSupport.json(ClinicOut.Treatment(record), extra: ClinicSupport.versionHeader(record.version))
    }

    func updateTreatment(_ request: Request, _ context: FacetRequestContext, delete: Bool) async throws -> Response {
        context.audit.action = delete ? "treatment delete" : "treatment change"
        let (summary, record) = try await namedTreatment(request, context, .recordWrite)
        context.audit.action += " (patient \(summary.key.hex), treatment \(record.id))"
        guard !record.deleted else { throw HTTPFailure(.gone, "the treatment was deleted") }
        let body = delete ? nil : try await ClinicSupport.body(request)
        let expected = try ClinicSupport.expectedVersion(request, body: body) ?? record.version
        let value = try body.map { b throws(ArchiveError) in try Treatment.decode(json: b) } ?? record.value
        let written = try await clinic.records(context).write(
            .treatment, id: record.id, patient: summary.key.hex, value: value, actor: context.audit.actor,
            deleted: delete, expectedVersion: expected)
        if delete { return Response(status: .noContent) }
        return try ClinicSupport.json(ClinicOut.Treatment(written), extra: ClinicSupport.versionHeader(written.version))
    }

    func treatmentVersions(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "treatment history read"
        let (summary, record) = try await namedTreatment(request, context, .read)
        context.audit.action = "treatment history read (patient \(summary.key.hex), treatment \(record.id))"
        let versions = try await clinic.records(context).versions(.treatment, id: record.id, as: Treatment.self)
        return try ClinicSupport.json(versions.map { ClinicOut.Treatment($0) })
    }

    // MARK: tags

    /// The instance of the URL and its patient, decided for `action` (404 for an unknown instance).
    func instance(_ context: FacetRequestContext, _ action: AccessAction) async throws -> (InstanceRecord, PatientKey) {
        try services.preauthorize(context, action)
        let uid = try RequestParts.uid(context, "instance")
        let tenant = try services.tenant(context)
        let catalog = tenant.archive.index.catalog()
        guard let record = catalog.instances[uid] else { throw HTTPFailure(.notFound, "no such instance") }
        let key = catalog.studies[record.studyInstanceUID].flatMap {
            services.identity.patient(of: $0, tenant: tenant.tenant)
        }
        try await services.authorize(context, action, patient: key)
        guard let key else { throw HTTPFailure(.unprocessableContent, "the instance names no patient") }
        context.audit.touch([record])
        return (record, key)
    }

    func tagsAnswer(_ record: InstanceRecord, _ kept: Versioned<InstanceTags>?) throws -> Response {
        let live = kept.flatMap { $0.deleted ? nil : $0 }
        let tags = PatientDirectory.effectiveTags(live?.value, record.attributes)
        return try ClinicSupport.json(
            ClinicOut.Tags(
                uid: record.sopInstanceUID, tags: tags, version: kept?.version ?? 0, date: kept?.date,
                actor: kept?.actor), extra: ClinicSupport.versionHeader(kept?.version ?? 0))
    }

    func tags(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "tags read"
        let (record, _) = try await instance(context, .read)
        let kept = try await clinic.records(context).current(.tags, id: record.sopInstanceUID, as: InstanceTags.self)
        return try tagsAnswer(record, kept)
    }

    func patchTags(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "tags change"
        let (record, key) = try await instance(context, .recordWrite)
        let body = try await ClinicSupport.body(request, limit: 64 << 10)
        let records = try clinic.records(context)
        let expected = try ClinicSupport.expectedVersion(request, body: nil)
        // The object's own tags are the starting point of the first version, so a patch of one field keeps them.
        let initial = PatientDirectory.effectiveTags(nil, record.attributes)
        var probe = initial
        try probe.apply(patch: body)
        if let treatment = probe.treatment {
            guard let found = try await records.current(.treatment, id: treatment, as: Treatment.self),
                found.patient == key.hex, !found.deleted
            else { throw HTTPFailure(.unprocessableContent, "the treatment is not one of this patient's") }
        }
        let written: Versioned<InstanceTags>
        if let expected {
            let current = try await records.current(.tags, id: record.sopInstanceUID, as: InstanceTags.self)
            var value = current?.value ?? initial
            try value.apply(patch: body)
            written = try await records.write(
                .tags, id: record.sopInstanceUID, patient: key.hex, parent: record.sopInstanceUID, value: value,
                actor: context.audit.actor, expectedVersion: expected)
        } else {
            written = try await records.update(
                .tags, id: record.sopInstanceUID, patient: key.hex, parent: record.sopInstanceUID,
                as: InstanceTags.self, actor: context.audit.actor, initial: initial
            ) { (tags: inout InstanceTags) throws(ArchiveError) in try tags.apply(patch: body) }
        }
        context.audit.action = "tags change (patient \(key.hex), version \(written.version))"
        return try tagsAnswer(record, written)
    }

    func tagVersions(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "tags history read"
        let (record, _) = try await instance(context, .read)
        let versions = try await clinic.records(context).versions(
            .tags, id: record.sopInstanceUID, as: InstanceTags.self)
        return try ClinicSupport.json(
            versions.map {
                ClinicOut.Tags(
                    uid: record.sopInstanceUID, tags: $0.value, version: $0.version, date: $0.date, actor: $0.actor)
            })
    }

    // MARK: annotations

    func annotations(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "annotations read"
        let (record, _) = try await instance(context, .read)
        let layers = try await clinic.records(context).list(
            .annotation, parent: record.sopInstanceUID, as: AnnotationLayer.self)
        return try ClinicSupport.json(layers.map(ClinicOut.Annotation.init))
    }

    func namedLayer(_ context: FacetRequestContext, _ action: AccessAction) async throws
        -> (InstanceRecord, PatientKey, Versioned<AnnotationLayer>)
    {
        let (record, key) = try await instance(context, action)
        guard let id = ClinicTerms.recordID(context.parameters.get("id")),
            let layer = try await clinic.records(context).current(.annotation, id: id, as: AnnotationLayer.self),
            layer.parent == record.sopInstanceUID
        else { throw HTTPFailure(.notFound, "no such annotation layer") }
        return (record, key, layer)
    }

    func annotation(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "annotation read"
        let (_, _, layer) = try await namedLayer(context, .read)
        guard !layer.deleted else { throw HTTPFailure(.gone, "the annotation layer was deleted") }
        return try ClinicSupport.json(ClinicOut.Annotation(layer), extra: ClinicSupport.versionHeader(layer.version))
    }

    func writeAnnotation(_ request: Request, _ context: FacetRequestContext, create: Bool) async throws -> Response {
        context.audit.action = create ? "annotation create" : "annotation change"
        let (record, key, existing): (InstanceRecord, PatientKey, Versioned<AnnotationLayer>?)
        if create {
            let (found, foundKey) = try await instance(context, .recordWrite)
            (record, key, existing) = (found, foundKey, nil)
        } else {
            let named = try await namedLayer(context, .recordWrite)
            guard !named.2.deleted else { throw HTTPFailure(.gone, "the annotation layer was deleted") }
            (record, key, existing) = (named.0, named.1, named.2)
        }
        guard record.attributes.int(.rows) != nil else {
            throw HTTPFailure(.unprocessableContent, "annotation layers are drawn on images")
        }
        let body = try await ClinicSupport.body(request)
        let spacing = record.attributes.strings(Tag(0x0028, 0x0030))?.compactMap {
            Double($0.trimmingCharacters(in: .whitespaces))
        }
        let layer = try AnnotationLayer.decode(
            json: body, columns: record.attributes.int(.columns), rows: record.attributes.int(.rows),
            spacing: spacing)
        let id = existing?.id ?? ClinicTerms.newID()
        let expected = try existing.map { try ClinicSupport.expectedVersion(request, body: body) ?? $0.version } ?? 0
        let written = try await clinic.records(context).write(
            .annotation, id: id, patient: key.hex, parent: record.sopInstanceUID, value: layer,
            actor: context.audit.actor, expectedVersion: expected)
        context.audit.action += " (patient \(key.hex), layer \(id), version \(written.version))"
        let location = create ? "\(services.urls.base)\(request.uri.path)/\(id)" : nil
        return try ClinicSupport.json(
            ClinicOut.Annotation(written), status: create ? .created : .ok,
            extra: ClinicSupport.versionHeader(written.version, location: location))
    }

    func deleteAnnotation(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "annotation delete"
        let (record, key, layer) = try await namedLayer(context, .recordWrite)
        guard !layer.deleted else { throw HTTPFailure(.gone, "the annotation layer was deleted") }
        let expected = try ClinicSupport.expectedVersion(request, body: nil) ?? layer.version
        _ = try await clinic.records(context).write(
            .annotation, id: layer.id, patient: key.hex, parent: record.sopInstanceUID, value: layer.value,
            actor: context.audit.actor, deleted: true, expectedVersion: expected)
        context.audit.action += " (patient \(key.hex), layer \(layer.id))"
        return Response(status: .noContent)
    }

    func annotationVersions(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "annotation history read"
        let (_, _, layer) = try await namedLayer(context, .read)
        let versions = try await clinic.records(context).versions(.annotation, id: layer.id, as: AnnotationLayer.self)
        return try ClinicSupport.json(versions.map(ClinicOut.Annotation.init))
    }
}
