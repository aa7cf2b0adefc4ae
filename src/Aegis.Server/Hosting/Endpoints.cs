using Aegis.Web;
using Aegis.Web.DicomWeb;

namespace Aegis.Server.Hosting;

/// <summary>Every HTTP endpoint group of `aegis serve`, mapped in one place (each group in its own Aegis.Web file).</summary>
internal static class Endpoints
{
    public static void MapAegisEndpoints(this WebApplication app)
    {
        app.MapDicomWeb();
        // OpenID Connect provider and login page, admin API and /openapi, the OHIF viewer.
        app.MapAegisIdentity();
    }
}
