using System.Text;
using System.Text.Json;
using Aegis.Web.Auth;
using Microsoft.AspNetCore.StaticFiles;

namespace Aegis.Web.Viewer;

/// <summary>
/// The OHIF viewer at /viewer. Its files hold no patient data, but "nothing is reachable without authentication
/// except the health probes" holds here too: the viewer is served only to a browser holding a login session from
/// our login page; anybody else is redirected there (and, after login, back). The viewer then runs the
/// OpenID Connect code flow with PKCE against our provider (client "ohif") — with the session that is one
/// redirect without a second prompt — and calls DICOMweb with the Bearer token it got, never with the cookie.
/// The build is the prebuilt @ohif/app from npm, fetched by scripts/fetch-viewer.sh (not in git) and rebased
/// from "/" to "/viewer/"; app-config.js is generated here for the origin the browser used.
/// </summary>
public static class ViewerEndpoints
{
    public const string Prefix = "/viewer";

    /// <summary>
    /// What the viewer may do in the browser: its own scripts (OHIF needs inline bootstrap scripts, eval for
    /// some codecs and WebAssembly), workers and blobs; network only to this origin (DICOMweb, OIDC). No other
    /// host is contacted, so a compromised script cannot ship images elsewhere through fetch or images.
    /// </summary>
    public const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; " +
        "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-src 'self'; " +
        "frame-ancestors 'self'; base-uri 'self'; form-action 'self'; object-src 'none'";

    private static readonly FileExtensionContentTypeProvider ContentTypes = CreateContentTypes();

    public static void MapViewer(this IEndpointRouteBuilder app)
    {
        var options = app.ServiceProvider.GetRequiredService<AegisWebOptions>();
        var root = string.IsNullOrEmpty(options.ViewerDirectory) ? null : Path.GetFullPath(options.ViewerDirectory);

        app.MapGet(Prefix + "/app-config.js", (HttpContext ctx, TokenService tokens) =>
        {
            SetHeaders(ctx.Response, cache: false);
            return Results.Text(AppConfig(TokenService.OriginOf(ctx), tokens.IssuerFor(ctx)), "text/javascript; charset=utf-8");
        }).RequireAuthorization(AegisPolicies.Session);
        app.MapGet(Prefix + "/{**path}", (HttpContext ctx, string? path) =>
        {
            if (root is null || !File.Exists(Path.Combine(root, "index.html")))
                return Results.Text("The OHIF viewer is not installed on this server: run scripts/fetch-viewer.sh DIR/viewer and restart.\n",
                    "text/plain; charset=utf-8", statusCode: 404);
            var file = Resolve(root, path ?? "");
            if (file is null)
            {
                // The viewer's own routes (/viewer/viewer?StudyInstanceUIDs=..., /viewer/callback) are index.html;
                // a missing asset (with an extension) is a plain 404.
                if (Path.HasExtension(path)) return Results.NotFound();
                file = Path.Combine(root, "index.html");
            }
            bool isIndex = file.EndsWith("index.html", StringComparison.Ordinal) || file.EndsWith(".html", StringComparison.Ordinal);
            SetHeaders(ctx.Response, cache: !isIndex);
            if (!ContentTypes.TryGetContentType(file, out var type)) type = "application/octet-stream";
            return Results.File(file, type, enableRangeProcessing: true);
        }).RequireAuthorization(AegisPolicies.Session);
    }

    /// <summary>A path inside the viewer folder, or null: no "..", no rooted parts, no symlink escape of the prefix.</summary>
    internal static string? Resolve(string root, string relative)
    {
        if (relative.Length == 0) return Path.Combine(root, "index.html");
        if (relative.Contains('\\') || relative.Contains('\0') || relative.Split('/').Any(s => s is ".." or ".")) return null;
        var full = Path.GetFullPath(Path.Combine(root, relative));
        if (!full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal)) return null;
        return File.Exists(full) ? full : null;
    }

    private static void SetHeaders(HttpResponse r, bool cache)
    {
        r.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        r.Headers.XContentTypeOptions = "nosniff";
        r.Headers["Referrer-Policy"] = "no-referrer";
        // private: never in a shared cache, since every response here needed a login.
        r.Headers.CacheControl = cache ? "private, max-age=3600" : "no-store";
    }

    /// <summary>OHIF's window.config: our DICOMweb root and our OpenID Connect provider (client "ohif", code + PKCE).</summary>
    public static string AppConfig(string origin, string issuer)
    {
        string J(string s) => JsonSerializer.Serialize(s);
        var sb = new StringBuilder();
        sb.Append("/* Generated by Aegis for ").Append(origin.Replace("*/", "")).Append(" */\n");
        sb.Append("window.config = {\n");
        sb.Append("  name: 'aegis',\n  routerBasename: '/viewer',\n  extensions: [],\n  modes: [],\n  customizationService: {},\n");
        sb.Append("  showStudyList: true,\n  maxNumberOfWebWorkers: 3,\n  showWarningMessageForCrossOrigin: false,\n  showCPUFallbackMessage: true,\n");
        sb.Append("  showLoadingIndicator: true,\n  strictZSpacingForVolumeViewport: true,\n  defaultDataSourceName: 'aegis',\n");
        sb.Append("  investigationalUseDialog: { option: 'never' },\n");
        sb.Append("  dataSources: [{\n");
        sb.Append("    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',\n    sourceName: 'aegis',\n    configuration: {\n");
        sb.Append("      friendlyName: 'Aegis',\n      name: 'aegis',\n");
        sb.Append("      wadoUriRoot: ").Append(J(origin + "/dicomweb/wado")).Append(",\n");
        sb.Append("      qidoRoot: ").Append(J(origin + "/dicomweb")).Append(",\n");
        sb.Append("      wadoRoot: ").Append(J(origin + "/dicomweb")).Append(",\n");
        sb.Append("      qidoSupportsIncludeField: true,\n      supportsReject: false,\n      imageRendering: 'wadors',\n      thumbnailRendering: 'wadors',\n");
        sb.Append("      enableStudyLazyLoad: true,\n      supportsFuzzyMatching: true,\n      supportsWildcard: true,\n      staticWado: false,\n");
        sb.Append("      singlepart: 'bulkdata,video',\n      omitQuotationForMultipartRequest: true,\n");
        sb.Append("      bulkDataURI: { enabled: true, relativeResolution: 'studies' },\n");
        sb.Append("    },\n  }],\n");
        sb.Append("  oidc: [{\n");
        sb.Append("    authority: ").Append(J(issuer)).Append(",\n");
        sb.Append("    client_id: ").Append(J(OidcClients.ViewerClientId)).Append(",\n");
        // OHIF also mounts a route at the path of post_logout_redirect_uri (its sign-out callback). The default '/'
        // becomes /viewer/, i.e. router path "/viewer" under the basename -- exactly the viewer mode's route, so
        // opening a study ran the sign-out callback and looped (viewer??StudyInstanceUIDs=...). An absolute URL
        // outside the viewer avoids that; after signing out the browser lands on our login page.
        sb.Append("    redirect_uri: '/callback',\n    silent_redirect_uri: '/silent-refresh.html',\n");
        sb.Append("    post_logout_redirect_uri: ").Append(J(origin + "/login")).Append(",\n");
        sb.Append("    response_type: 'code',\n    scope: 'openid profile',\n    automaticSilentRenew: true,\n    revokeAccessTokenOnSignout: true,\n");
        sb.Append("  }],\n};\n");
        return sb.ToString();
    }

    private static FileExtensionContentTypeProvider CreateContentTypes()
    {
        var p = new FileExtensionContentTypeProvider();
        p.Mappings[".wasm"] = "application/wasm";
        p.Mappings[".jsonc"] = "application/json";
        p.Mappings[".webapp"] = "application/x-web-app-manifest+json";
        p.Mappings[".mjs"] = "text/javascript";
        return p;
    }
}
