import Foundation
import HTTPTypes
import Hummingbird

/// The Retrieve Capabilities transaction (PS3.18 8.9, Annex H): `OPTIONS /dicomweb/` answers a WADL document
/// naming every resource, method and media type Facet serves. (A CORS preflight, also an OPTIONS, is answered
/// earlier by the request guard.)
struct CapabilitiesRoutes {
    func add(to router: Router<FacetRequestContext>) {
        router.on("/dicomweb", method: .options) { _, context in
            context.audit.action = "capabilities"
            return Self.response()
        }
    }

    static func response() -> Response {
        var headers = HTTPFields()
        headers[.allow] = "GET, POST, OPTIONS"
        return Responses.text(wadl, contentType: "application/vnd.sun.wadl+xml", extra: headers)
    }

    private static func method(_ name: String, _ id: String, _ types: [String], request: [String] = []) -> String {
        var out = "<method name=\"\(name)\" id=\"\(id)\">"
        if !request.isEmpty {
            out += "<request>" + request.map { "<representation mediaType=\"\($0)\"/>" }.joined() + "</request>"
        }
        out += "<response status=\"200\">" + types.map { "<representation mediaType=\"\(escape($0))\"/>" }.joined()
        out += "</response></method>"
        return out
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\"", with: "&quot;")
    }

    static let dicom = ["multipart/related; type=\"application/dicom\""]
    static let metadata = ["application/dicom+json", "multipart/related; type=\"application/dicom+xml\""]
    static let rendered = ["image/jpeg", "image/png"]
    static let search = ["application/dicom+json", "multipart/related; type=\"application/dicom+xml\""]

    static let wadl: String = {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<application xmlns=\"http://wadl.dev.java.net/2009/02\">"
        out += "<resources base=\"/dicomweb/\">"
        out += "<resource path=\"studies\">"
        out += method("GET", "SearchForStudies", search)
        out += method("POST", "StoreInstances", ["application/dicom+json", "application/dicom+xml"], request: dicom)
        out += "<resource path=\"{study}\">"
        out += method("GET", "RetrieveStudy", dicom)
        out += method(
            "POST", "StoreStudyInstances", ["application/dicom+json", "application/dicom+xml"], request: dicom)
        out += "<resource path=\"metadata\">" + method("GET", "RetrieveStudyMetadata", metadata) + "</resource>"
        out += "<resource path=\"rendered\">" + method("GET", "RetrieveRenderedStudy", rendered) + "</resource>"
        out += "<resource path=\"thumbnail\">" + method("GET", "RetrieveStudyThumbnail", rendered) + "</resource>"
        out += "<resource path=\"series\">" + method("GET", "SearchForStudySeries", search) + "</resource>"
        out += "<resource path=\"instances\">" + method("GET", "SearchForStudyInstances", search) + "</resource>"
        out += "<resource path=\"series/{series}\">"
        out += method("GET", "RetrieveSeries", dicom)
        out += "<resource path=\"metadata\">" + method("GET", "RetrieveSeriesMetadata", metadata) + "</resource>"
        out += "<resource path=\"rendered\">" + method("GET", "RetrieveRenderedSeries", rendered) + "</resource>"
        out += "<resource path=\"thumbnail\">" + method("GET", "RetrieveSeriesThumbnail", rendered) + "</resource>"
        out += "<resource path=\"instances\">" + method("GET", "SearchForStudySeriesInstances", search) + "</resource>"
        out += "<resource path=\"instances/{instance}\">"
        out += method("GET", "RetrieveInstance", dicom + ["application/dicom"])
        out += "<resource path=\"metadata\">" + method("GET", "RetrieveInstanceMetadata", metadata) + "</resource>"
        out += "<resource path=\"rendered\">" + method("GET", "RetrieveRenderedInstance", rendered) + "</resource>"
        out += "<resource path=\"thumbnail\">" + method("GET", "RetrieveInstanceThumbnail", rendered) + "</resource>"
        out += "<resource path=\"bulkdata/{attribute}\">"
        out += method(
            "GET", "RetrieveBulkdata",
            [
                "multipart/related; type=\"application/octet-stream\"", "application/octet-stream", "model/obj",
                "model/stl", "model/mtl",
            ])
        out += "</resource>"
        out += "<resource path=\"frames/{frames}\">"
        out += method(
            "GET", "RetrieveFrames",
            ["multipart/related; type=\"application/octet-stream\"", "multipart/related; type=\"image/jpeg\""])
        out += "<resource path=\"rendered\">" + method("GET", "RetrieveRenderedFrames", rendered) + "</resource>"
        out += "<resource path=\"thumbnail\">" + method("GET", "RetrieveFrameThumbnail", rendered) + "</resource>"
        out += "</resource>"
        out += "</resource></resource></resource>"
        out += "</resource>"
        out += "<resource path=\"series\">" + method("GET", "SearchForSeries", search) + "</resource>"
        out += "<resource path=\"instances\">" + method("GET", "SearchForInstances", search) + "</resource>"
        out += "</resources></application>\n"
        return out
    }()
}
