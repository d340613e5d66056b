import DICOMCore
import Foundation
import MeshKit

/// Wraps 3D surface files as Encapsulated STL, OBJ and MTL Storage objects (Modality M3D). The encapsulated bytes
/// are the original file's, unchanged. An OBJ brings along the MTL files it names and the textures those name:
/// OBJ and MTL share one Model Group UID and reference each other's instances with the Relative URI the file
/// uses; textures become VL Photographic images of the same study in their own series.
public enum MeshConverter {
    /// Largest mesh file wrapped (encapsulated documents are limited to 4 GiB by the UL length).
    public static let maximumFileSize = 1 << 30

    public static let ucumMillimetre = CodedConcept("mm", "UCUM", "millimeter")

    /// Parses and validates a mesh with MeshKit; a broken mesh is refused with MeshKit's reason.
    static func validate(_ data: Data, format: MeshFormat) throws(DICOMCodecError) -> Mesh {
        do {
            return try MeshReader.read(data, format: format)
        } catch {
            throw DICOMCodecError(.invalidMesh, error.message)
        }
    }

    /// Prepares the STL object. Encapsulated STL must be binary: a binary file is stored as it is; an ASCII file
    /// is converted to binary STL by MeshKit (the original text is not in the DICOM object).
    public static func convertSTL(_ data: Data, context: InstanceContext, seriesNumber: Int) throws(DICOMCodecError)
        -> [PreparedInstance]
    {
        try checkSize(data)
        guard !data.isEmpty else { throw DICOMCodecError(.invalidMesh, "file is empty") }
        let mesh = try validate(data, format: .stl)
        let binary = STLReader.isBinary(data)
        let document = binary ? data : MeshWriter.binarySTL(mesh)
        return [
            stlInstance(
                document, title: binary ? "3D surface model (STL)" : "3D surface model (STL, converted from ASCII STL)",
                context: context, seriesNumber: seriesNumber)
        ]
    }

    /// Prepares a PLY capture: PLY has no DICOM SOP class, so MeshKit converts it to OBJ (vertex colours kept as
    /// `v x y z r g b`) and that is encapsulated.
    public static func convertPLY(_ data: Data, context: InstanceContext, seriesNumber: Int) throws(DICOMCodecError)
        -> [PreparedInstance]
    {
        try checkSize(data)
        guard !data.isEmpty else { throw DICOMCodecError(.invalidMesh, "file is empty") }
        let mesh = try validate(data, format: .ply)
        let obj = MeshWriter.obj(mesh)
        try checkSize(obj)
        let dataset = documentDataset(
            obj, sopClass: UID.encapsulatedOBJStorage, mime: "model/obj",
            title: "3D surface model (OBJ, converted from PLY)",
            context: context, seriesUID: context.uids.make(), seriesNumber: seriesNumber, instanceNumber: 1,
            frameOfReference: context.uids.make(), modelGroup: nil, references: [])
        return [
            PreparedInstance(
                dataset: dataset, transferSyntaxUID: UID.explicitVRLittleEndian, notes: ["converted from PLY"])
        ]
    }

    static func stlInstance(_ document: Data, title: String, context: InstanceContext, seriesNumber: Int)
        -> PreparedInstance
    {
        let series = context.uids.make()
        let frame = context.uids.make()
        let dataset = documentDataset(
            document, sopClass: UID.encapsulatedSTLStorage, mime: "model/stl", title: title,
            context: context, seriesUID: series, seriesNumber: seriesNumber, instanceNumber: 1, frameOfReference: frame,
            modelGroup: nil, references: [])
        return PreparedInstance(dataset: dataset, transferSyntaxUID: UID.explicitVRLittleEndian, notes: [])
    }

    /// Prepares the OBJ, every MTL it names and every texture those name. Nothing is read outside the OBJ's folder.
    public static func convertOBJ(at url: URL, context: InstanceContext, seriesNumber: Int, textureSeriesNumber: Int)
        throws(DICOMCodecError) -> [PreparedInstance]
    {
        let data = try read(url, what: "OBJ")
        let directory = url.deletingLastPathComponent()
        return try convertOBJ(
            data, context: context, seriesNumber: seriesNumber, textureSeriesNumber: textureSeriesNumber,
            exists: { name in (try? SafePath.resolve(name, in: directory, what: "MTL")) != nil },
            load: { (reference, base, what) throws(DICOMCodecError) in
                let folder = base.isEmpty ? directory : URL(fileURLWithPath: base)
                let resolved = try SafePath.resolve(reference, in: folder, what: what)
                return (resolved.path, resolved.deletingLastPathComponent().path, try read(resolved, what: what))
            })
    }

    /// Prepares an OBJ uploaded with its companion files held in memory, keyed by their relative paths
    /// (`face.mtl`, `textures/skin.jpg`). References are resolved as on disk: relative to the file naming them,
    /// never upwards (`..`), never absolute.
    public static func convertOBJ(
        _ data: Data, files: [String: Data], context: InstanceContext, seriesNumber: Int, textureSeriesNumber: Int
    ) throws(DICOMCodecError) -> [PreparedInstance] {
        var normalized: [String: Data] = [:]
        for (name, content) in files { normalized[name.replacingOccurrences(of: "\\", with: "/")] = content }
        func resolve(_ reference: String, _ base: String, _ what: String) throws(DICOMCodecError) -> String {
            let text = reference.replacingOccurrences(of: "\\", with: "/")
            if text.isEmpty { throw DICOMCodecError(.unsafePath, "\(what) reference is empty") }
            if text.hasPrefix("/") || text.hasPrefix("~") || text.contains("://")
                || (text.count >= 2 && text.dropFirst().first == ":")
            {
                throw DICOMCodecError(
                    .unsafePath, "\(what) reference is absolute; only files sent with the mesh are read")
            }
            let components = text.split(separator: "/", omittingEmptySubsequences: true)
            if components.contains("..") {
                throw DICOMCodecError(.unsafePath, "\(what) reference leaves the mesh's folder ('..')")
            }
            let path = (base.isEmpty ? [] : [base]) + components.map(String.init)
            let key = path.joined(separator: "/")
            guard normalized[key] != nil else {
                throw DICOMCodecError(.missingFile, "\(what) file named by the mesh was not sent with it")
            }
            return key
        }
        var used = Set<String>()
        let instances = try convertOBJ(
            data, context: context, seriesNumber: seriesNumber, textureSeriesNumber: textureSeriesNumber,
            exists: { name in (try? resolve(name, "", "MTL")) != nil },
            load: { (reference, base, what) throws(DICOMCodecError) in
                let key = try resolve(reference, base, what)
                used.insert(key)
                let folder = key.split(separator: "/").dropLast().joined(separator: "/")
                return (key, folder, normalized[key] ?? Data())
            })
        // Nothing is kept that the mesh does not name: an extra file would be stored unvalidated.
        let unused = normalized.count - used.count
        if unused > 0 {
            throw DICOMCodecError(
                .unsupported,
                "\(unused) file(s) sent with the OBJ are named neither by it nor by its MTL; send only the mesh, its MTL and its textures"
            )
        }
        return instances
    }

    /// `load(reference, base folder key, what)` returns a unique key for the file, the folder key its own
    /// references are relative to, and its bytes.
    static func convertOBJ(
        _ data: Data, context: InstanceContext, seriesNumber: Int, textureSeriesNumber: Int,
        exists: (String) -> Bool,
        load: (String, String, String) throws(DICOMCodecError) -> (key: String, folder: String, data: Data)
    ) throws(DICOMCodecError) -> [PreparedInstance] {
        try checkSize(data)
        guard let text = String(data: data, encoding: .utf8) ?? String(data: data, encoding: .isoLatin1), !data.isEmpty
        else {
            throw DICOMCodecError(.invalidMesh, data.isEmpty ? "file is empty" : "OBJ is not text")
        }
        // MeshKit decides whether it is a mesh (vertices, faces, indices in range) and says why not.
        _ = try validate(data, format: .obj)
        let libraries = OBJReferences.materialLibraries(text, exists: exists)

        let series = context.uids.make()
        let textureSeries = context.uids.make()
        let frame = context.uids.make()
        let modelGroup = context.uids.make()
        var instances: [PreparedInstance] = []
        var objReferences: [Reference] = []
        var textureNumber = 0
        var textureByPath: [String: PreparedInstance] = [:]
        var instanceNumber = 2
        var mtlByKey: [String: PreparedInstance] = [:]

        for library in libraries {
            let mtlFile: (key: String, folder: String, data: Data)
            do {
                mtlFile = try load(library.uri, "", "MTL")
            } catch {
                throw DICOMCodecError(error.code, "mtllib on line \(library.line): \(error.message)")
            }
            // A library named again (repeated mtllib lines) is one object, referenced again.
            if let existing = mtlByKey[mtlFile.key] {
                if !objReferences.contains(where: { $0.uri == library.uri && $0.sopInstance == existing.sopInstanceUID }
                ) {
                    objReferences.append(Reference(library.uri, existing))
                }
                continue
            }
            let mtlData = mtlFile.data
            try checkSize(mtlData)
            guard let mtlText = String(data: mtlData, encoding: .utf8) ?? String(data: mtlData, encoding: .isoLatin1),
                !mtlData.contains(0)
            else {
                throw DICOMCodecError(.invalidMesh, "MTL named on line \(library.line) is not text")
            }
            var mtlReferences: [Reference] = []
            for texture in OBJReferences.textures(mtlText) {
                let textureFile: (key: String, folder: String, data: Data)
                do {
                    // The MTL lies inside the OBJ's folder, so a texture confined to the MTL's folder is too.
                    textureFile = try load(texture.uri, mtlFile.folder, "texture")
                } catch {
                    throw DICOMCodecError(error.code, "MTL line \(texture.line): \(error.message)")
                }
                if let existing = textureByPath[textureFile.key] {
                    mtlReferences.append(Reference(texture.uri, existing))
                    continue
                }
                let textureData = textureFile.data
                guard PhotoConverter.kind(of: textureData) != nil else {
                    throw DICOMCodecError(.unsupported, "MTL line \(texture.line): texture is not JPEG or PNG")
                }
                textureNumber += 1
                var prepared: PreparedInstance
                do {
                    prepared = try PhotoConverter.convert(
                        textureData, context: textureContext(context),
                        placement: .init(
                            seriesInstanceUID: textureSeries, seriesNumber: textureSeriesNumber,
                            instanceNumber: textureNumber))
                } catch {
                    throw DICOMCodecError(error.code, "texture named on MTL line \(texture.line): \(error.message)")
                }
                textureByPath[textureFile.key] = prepared
                instances.append(prepared)
                mtlReferences.append(Reference(texture.uri, prepared))
            }
            let mtlDataset = documentDataset(
                mtlData, sopClass: UID.encapsulatedMTLStorage, mime: "model/mtl", title: "3D surface material (MTL)",
                context: context, seriesUID: series, seriesNumber: seriesNumber, instanceNumber: instanceNumber,
                frameOfReference: nil, modelGroup: modelGroup, references: mtlReferences)
            instanceNumber += 1
            let mtl = PreparedInstance(dataset: mtlDataset, transferSyntaxUID: UID.explicitVRLittleEndian, notes: [])
            mtlByKey[mtlFile.key] = mtl
            instances.append(mtl)
            objReferences.append(Reference(library.uri, mtl))
        }
        let objDataset = documentDataset(
            data, sopClass: UID.encapsulatedOBJStorage, mime: "model/obj", title: "3D surface model (OBJ)",
            context: context, seriesUID: series, seriesNumber: seriesNumber, instanceNumber: 1, frameOfReference: frame,
            modelGroup: libraries.isEmpty ? nil : modelGroup, references: objReferences)
        instances.insert(
            PreparedInstance(dataset: objDataset, transferSyntaxUID: UID.explicitVRLittleEndian, notes: []), at: 0)
        return instances
    }

    /// Textures are photographs of the capture: same patient and study, no view or timing of their own.
    private static func textureContext(_ context: InstanceContext) -> InstanceContext {
        var textures = context
        textures.metadata.view = nil
        textures.metadata.seriesDescription = "3D capture textures"
        return textures
    }

    static func documentDataset(
        _ document: Data, sopClass: String, mime: String, title: String, context: InstanceContext, seriesUID: String,
        seriesNumber: Int, instanceNumber: Int, frameOfReference: String?, modelGroup: String?,
        references: [Reference]
    ) -> Dataset {
        var dataset = context.baseDataset(
            sopClassUID: sopClass, sopInstanceUID: context.uids.make(), seriesInstanceUID: seriesUID, modality: "M3D",
            seriesNumber: seriesNumber, instanceNumber: instanceNumber)
        let metadata = context.metadata
        // Enhanced General Equipment: Type 1. Without a capture device named in the metadata, the equipment that
        // produced the instance is Facet's converter.
        dataset.set(.manufacturer, .LO, metadata.manufacturer ?? Facet.manufacturer)
        dataset.set(.manufacturerModelName, .LO, metadata.manufacturerModelName ?? "Facet dicomize")
        dataset.set(.deviceSerialNumber, .LO, metadata.deviceSerialNumber ?? context.deviceSerialNumber)
        dataset.set(.softwareVersions, .LO, metadata.softwareVersions ?? "Facet \(context.softwareVersion)")
        if let frameOfReference {
            dataset.set(.frameOfReferenceUID, .UI, frameOfReference)
            dataset.set(.positionReferenceIndicator, .LO, strings: [])
        }
        dataset.set(.contentDate, .DA, context.nowDate)
        dataset.set(.contentTime, .TM, context.nowTime)
        dataset.set(.acquisitionDateTime, .DT, strings: [])
        dataset.set(Tag(0x0028, 0x0301), .CS, "NO")  // Burned In Annotation
        dataset.set(.documentTitle, .ST, title)
        dataset.set(.conceptNameCodeSequence, sequence: [])
        dataset.set(.mimeTypeOfEncapsulatedDocument, .LO, mime)
        dataset.set(.measurementUnitsCodeSequence, sequence: [ucumMillimetre.item])
        if let region = metadata.region { dataset.set(.anatomicRegionSequence, sequence: [region.code.item]) }
        if let modelGroup { dataset.set(.modelGroupUID, .UI, modelGroup) }
        if sopClass != UID.encapsulatedSTLStorage {
            // OBJ and MTL carry colour (vertex colours, Kd, textures): the ICC Profile module is required.
            dataset.set(DataElement(.iccProfile, .OB, .bytes(SRGBProfile.data)))
            dataset.set(Tag(0x0028, 0x2002), .CS, "SRGB")  // Color Space
        }
        if !references.isEmpty {
            dataset.set(
                .referencedInstanceSequence,
                sequence: references.map { reference in
                    var item = Dataset()
                    item.set(.referencedSOPClassUID, .UI, reference.sopClass)
                    item.set(.referencedSOPInstanceUID, .UI, reference.sopInstance)
                    item.set(Tag(0x0068, 0x7005), .UR, reference.uri)
                    return item
                })
            // Common Instance Reference module: every referenced instance, by series.
            var bySeries: [String: [Reference]] = [:]
            for reference in references { bySeries[reference.series, default: []].append(reference) }
            dataset.set(
                Tag(0x0008, 0x1115),
                sequence: bySeries.keys.sorted().map { series in
                    var item = Dataset()
                    item.set(.seriesInstanceUID, .UI, series)
                    item.set(
                        .referencedInstanceSequence,
                        sequence: (bySeries[series] ?? []).map { reference in
                            var instance = Dataset()
                            instance.set(.referencedSOPClassUID, .UI, reference.sopClass)
                            instance.set(.referencedSOPInstanceUID, .UI, reference.sopInstance)
                            return instance
                        })
                    return item
                })
        }
        dataset.set(DataElement(.encapsulatedDocument, .OB, .bytes(document)))
        dataset.set(DataElement(.encapsulatedDocumentLength, .UL, .unsigned([UInt64(document.count)])))
        return dataset
    }

    /// An instance that a mesh file names, with the exact text it uses for it.
    struct Reference {
        var uri: String
        var sopClass: String
        var sopInstance: String
        var series: String

        init(_ uri: String, _ instance: PreparedInstance) {
            self.uri = uri
            self.sopClass = instance.sopClassUID
            self.sopInstance = instance.sopInstanceUID
            self.series = instance.dataset.string(.seriesInstanceUID) ?? ""
        }
    }

    static func checkSize(_ data: Data) throws(DICOMCodecError) {
        guard data.count <= maximumFileSize else {
            throw DICOMCodecError(.limitExceeded, "mesh file is larger than \(maximumFileSize >> 20) MiB")
        }
    }

    static func read(_ url: URL, what: String) throws(DICOMCodecError) -> Data {
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
            if let size = attributes[.size] as? Int, size > maximumFileSize {
                throw DICOMCodecError(.limitExceeded, "\(what) file is larger than \(maximumFileSize >> 20) MiB")
            }
            return try Data(contentsOf: url)
        } catch let error as DICOMCodecError {
            throw error
        } catch {
            throw DICOMCodecError(.io, "\(what) file cannot be read")
        }
    }
}
