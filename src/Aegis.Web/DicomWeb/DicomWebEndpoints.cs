using Aegis.Archive.Index;
using Aegis.Web.Auth;

namespace Aegis.Web.DicomWeb;

/// <summary>Registers and maps the DICOMweb services under /dicomweb (PS3.18 10: studies, series, instances; 9: WADO-URI).</summary>
public static class DicomWebEndpoints
{
    /// <summary>
    /// Needs ArchiveIndex, QueryEngine, InstanceIngestor, IBlobStore, AuditTrail and AccountStore in the container.
    /// </summary>
    public static IServiceCollection AddDicomWeb(this IServiceCollection services, Action<DicomWebOptions>? configure = null)
    {
        var options = new DicomWebOptions();
        configure?.Invoke(options);
        services.AddSingleton(options);
        services.AddSingleton<DicomWebService>();
        return services;
    }

    public static IEndpointRouteBuilder MapDicomWeb(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup(DicomWebService.Root);
        DicomWebService S(HttpContext c) => c.RequestServices.GetRequiredService<DicomWebService>();
        const string Studies = "/studies";
        const string Study = "/studies/{study}";
        const string Series = "/studies/{study}/series/{series}";
        const string Instance = "/studies/{study}/series/{series}/instances/{instance}";

        // QIDO-RS (PS3.18 10.6)
        g.MapGet(Studies, c => S(c).SearchAsync(c, QueryRetrieveLevel.Study, null, null)).RequireAuthorization(AegisPolicies.Query);
        g.MapGet("/series", c => S(c).SearchAsync(c, QueryRetrieveLevel.Series, null, null)).RequireAuthorization(AegisPolicies.Query);
        g.MapGet("/instances", c => S(c).SearchAsync(c, QueryRetrieveLevel.Image, null, null)).RequireAuthorization(AegisPolicies.Query);
        g.MapGet(Study + "/series", (HttpContext c, string study) => S(c).SearchAsync(c, QueryRetrieveLevel.Series, study, null)).RequireAuthorization(AegisPolicies.Query);
        g.MapGet(Study + "/instances", (HttpContext c, string study) => S(c).SearchAsync(c, QueryRetrieveLevel.Image, study, null)).RequireAuthorization(AegisPolicies.Query);
        g.MapGet(Series + "/instances", (HttpContext c, string study, string series) => S(c).SearchAsync(c, QueryRetrieveLevel.Image, study, series)).RequireAuthorization(AegisPolicies.Query);

        // WADO-RS (PS3.18 10.4)
        g.MapGet(Study, (HttpContext c, string study) => S(c).RetrieveAsync(c, study, null, null)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Series, (HttpContext c, string study, string series) => S(c).RetrieveAsync(c, study, series, null)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Instance, (HttpContext c, string study, string series, string instance) => S(c).RetrieveAsync(c, study, series, instance)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Study + "/metadata", (HttpContext c, string study) => S(c).MetadataAsync(c, study, null, null)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Series + "/metadata", (HttpContext c, string study, string series) => S(c).MetadataAsync(c, study, series, null)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Instance + "/metadata", (HttpContext c, string study, string series, string instance) => S(c).MetadataAsync(c, study, series, instance)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Instance + "/bulkdata/{**path}", (HttpContext c, string study, string series, string instance, string path) => S(c).BulkDataAsync(c, study, series, instance, path)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Instance + "/frames/{frames}", (HttpContext c, string study, string series, string instance, string frames) => S(c).FramesAsync(c, study, series, instance, frames)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Instance + "/rendered", (HttpContext c, string study, string series, string instance) => S(c).RenderedAsync(c, study, series, instance, null)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Instance + "/frames/{frames}/rendered", (HttpContext c, string study, string series, string instance, string frames) => S(c).RenderedAsync(c, study, series, instance, frames)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Study + "/thumbnail", (HttpContext c, string study) => S(c).ThumbnailAsync(c, study, null, null, null)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Series + "/thumbnail", (HttpContext c, string study, string series) => S(c).ThumbnailAsync(c, study, series, null, null)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Instance + "/thumbnail", (HttpContext c, string study, string series, string instance) => S(c).ThumbnailAsync(c, study, series, instance, null)).RequireAuthorization(AegisPolicies.Retrieve);
        g.MapGet(Instance + "/frames/{frames}/thumbnail", (HttpContext c, string study, string series, string instance, string frames) => S(c).ThumbnailAsync(c, study, series, instance, frames)).RequireAuthorization(AegisPolicies.Retrieve);

        // STOW-RS (PS3.18 10.5); who may store is checked inside (Store permission or radiologist).
        g.MapPost(Studies, c => S(c).StoreAsync(c, null));
        g.MapPost(Study, (HttpContext c, string study) => S(c).StoreAsync(c, study));

        // Delete: admin only, audited (not part of PS3.18).
        g.MapDelete(Study, (HttpContext c, string study) => S(c).DeleteAsync(c, study, null, null)).RequireAuthorization(AegisPolicies.Admin);
        g.MapDelete(Series, (HttpContext c, string study, string series) => S(c).DeleteAsync(c, study, series, null)).RequireAuthorization(AegisPolicies.Admin);
        g.MapDelete(Instance, (HttpContext c, string study, string series, string instance) => S(c).DeleteAsync(c, study, series, instance)).RequireAuthorization(AegisPolicies.Admin);

        // WADO-URI (PS3.18 9)
        g.MapGet("/wado", c => S(c).WadoUriAsync(c)).RequireAuthorization(AegisPolicies.Retrieve);
        return app;
    }
}
